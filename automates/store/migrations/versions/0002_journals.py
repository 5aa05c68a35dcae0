"""Journals: the verbose execution journal and the append-only crash journal.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OUTCOMES = "'completed', 'findings', 'skipped', 'failed', 'timed_out', 'crashed', 'cancelled'"


def _jsonb(name: str, empty: str) -> sa.Column:
    return sa.Column(name, JSONB, nullable=False, server_default=sa.text(f"'{empty}'::jsonb"))


def upgrade() -> None:
    op.create_table(
        "execution_journal",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("flow_run_id", sa.Uuid, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Float, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("exit_code", sa.Integer),
        _jsonb("steps", "[]"),
        _jsonb("counters", "{}"),
        _jsonb("warnings", "[]"),
        _jsonb("errors", "[]"),
        _jsonb("context", "{}"),
        sa.PrimaryKeyConstraint("id", name=op.f("execution_journal_pkey")),
        sa.UniqueConstraint("flow_run_id", name=op.f("execution_journal_flow_run_id_key")),
        sa.CheckConstraint(
            f"outcome IN ({OUTCOMES})", name=op.f("execution_journal_outcome_check")
        ),
        sa.CheckConstraint("attempts >= 1", name=op.f("execution_journal_attempts_check")),
        sa.CheckConstraint(
            "finished_at >= started_at", name=op.f("execution_journal_finished_after_start_check")
        ),
        schema="automates",
    )
    op.create_index(
        "execution_journal_automate_finished_idx",
        "execution_journal",
        ["automate", sa.text("finished_at DESC")],
        schema="automates",
    )
    op.create_table(
        "crash_journal",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("flow_run_id", sa.Uuid, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column(
            "occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("error_class", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("traceback", sa.Text, nullable=False),
        sa.Column("fix_applied", sa.Text),
        sa.Column("retry_outcome", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("crash_journal_pkey")),
        sa.CheckConstraint(
            "retry_outcome IN ('succeeded', 'failed', 'none')",
            name=op.f("crash_journal_retry_outcome_check"),
        ),
        sa.CheckConstraint("attempt >= 1", name=op.f("crash_journal_attempt_check")),
        schema="automates",
    )
    op.create_index(
        "crash_journal_occurred_idx",
        "crash_journal",
        [sa.text("occurred_at DESC")],
        schema="automates",
    )
    # Append-only, enforced by the database itself: no role of the application can rewrite
    # or erase a crash once journaled.
    op.execute(
        """
        CREATE FUNCTION automates.refuse_crash_journal_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'automates.crash_journal is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER crash_journal_append_only
        BEFORE UPDATE OR DELETE ON automates.crash_journal
        FOR EACH STATEMENT EXECUTE FUNCTION automates.refuse_crash_journal_change()
        """
    )
    op.execute(
        """
        CREATE TRIGGER crash_journal_no_truncate
        BEFORE TRUNCATE ON automates.crash_journal
        FOR EACH STATEMENT EXECUTE FUNCTION automates.refuse_crash_journal_change()
        """
    )
