"""Journals: the verbose execution journal and the append-only crash journal.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from automates.store.migrations import ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OUTCOMES = ("completed", "findings", "skipped", "failed", "timed_out", "crashed", "cancelled")


def upgrade() -> None:
    ddl.create_table(
        "execution_journal",
        ddl.identity_id(always=True),
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("flow_run_id", sa.Uuid, nullable=False),
        ddl.timestamp("started_at", nullable=False),
        ddl.timestamp("finished_at", nullable=False),
        sa.Column("duration_seconds", sa.Float, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("exit_code", sa.Integer),
        ddl.jsonb("steps", "[]"),
        ddl.jsonb("counters", "{}"),
        ddl.jsonb("warnings", "[]"),
        ddl.jsonb("errors", "[]"),
        ddl.jsonb("context", "{}"),
        ddl.pkey("execution_journal", "id"),
        sa.UniqueConstraint("flow_run_id", name=op.f("execution_journal_flow_run_id_key")),
        ddl.one_of("execution_journal", "outcome", OUTCOMES),
        ddl.check("execution_journal", "attempts", "attempts >= 1"),
        ddl.check("execution_journal", "finished_after_start", "finished_at >= started_at"),
    )
    ddl.create_index(
        "execution_journal_automate_finished_idx",
        "execution_journal",
        ["automate", sa.text("finished_at DESC")],
    )
    ddl.create_table(
        "crash_journal",
        ddl.identity_id(always=True),
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("flow_run_id", sa.Uuid, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        ddl.timestamp_now("occurred_at"),
        sa.Column("error_class", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("traceback", sa.Text, nullable=False),
        sa.Column("fix_applied", sa.Text),
        sa.Column("retry_outcome", sa.Text, nullable=False),
        ddl.pkey("crash_journal", "id"),
        ddl.one_of("crash_journal", "retry_outcome", ("succeeded", "failed", "none")),
        ddl.check("crash_journal", "attempt", "attempt >= 1"),
    )
    ddl.create_index("crash_journal_occurred_idx", "crash_journal", [sa.text("occurred_at DESC")])
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
