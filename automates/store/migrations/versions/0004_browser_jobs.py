"""Browser jobs and the server side's second-factor mailbox.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KIND_PATTERN = "^[a-z][a-z0-9_]{0,39}$"
MAILBOX_PATTERN = "^[a-z0-9][a-z0-9._@+-]{0,127}$"


def upgrade() -> None:
    now = sa.func.now()
    op.create_table(
        "browser_jobs",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'queued'")),
        sa.Column("timeout_seconds", sa.Integer, nullable=False),
        sa.Column("flow_run_id", sa.Uuid),
        sa.Column("host", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
        sa.Column("result", JSONB),
        sa.Column("counters", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.PrimaryKeyConstraint("id", name=op.f("browser_jobs_pkey")),
        sa.CheckConstraint(f"kind ~ '{KIND_PATTERN}'", name=op.f("browser_jobs_kind_check")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')",
            name=op.f("browser_jobs_status_check"),
        ),
        sa.CheckConstraint(
            "timeout_seconds BETWEEN 1 AND 3600", name=op.f("browser_jobs_timeout_seconds_check")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("browser_jobs_attempts_check")),
        sa.CheckConstraint(
            "(status = 'queued') = (started_at IS NULL)",
            name=op.f("browser_jobs_started_when_claimed_check"),
        ),
        sa.CheckConstraint(
            "(status IN ('done', 'failed')) = (finished_at IS NOT NULL)",
            name=op.f("browser_jobs_finished_when_ended_check"),
        ),
        sa.CheckConstraint(
            "result IS NULL OR status = 'done'", name=op.f("browser_jobs_result_when_done_check")
        ),
        schema="automates",
    )
    op.create_index(
        "browser_jobs_status_idx", "browser_jobs", ["status", "created_at"], schema="automates"
    )
    op.create_table(
        "browser_mailbox",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("mailbox", sa.Text, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("consumed_by", sa.Uuid),
        sa.Column("consumed_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name=op.f("browser_mailbox_pkey")),
        sa.CheckConstraint(
            f"mailbox ~ '{MAILBOX_PATTERN}'", name=op.f("browser_mailbox_mailbox_check")
        ),
        sa.CheckConstraint(
            "(consumed_by IS NULL) = (consumed_at IS NULL)",
            name=op.f("browser_mailbox_consumed_together_check"),
        ),
        schema="automates",
    )
    op.create_index(
        "browser_mailbox_mailbox_idx",
        "browser_mailbox",
        ["mailbox", sa.text("received_at DESC")],
        schema="automates",
    )
