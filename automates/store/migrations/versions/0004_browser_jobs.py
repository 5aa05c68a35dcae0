"""Browser jobs and the server side's second-factor mailbox.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from automates.store.migrations import ddl

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KIND_PATTERN = "^[a-z][a-z0-9_]{0,39}$"
MAILBOX_PATTERN = "^[a-z0-9][a-z0-9._@+-]{0,127}$"
STATUSES = ("queued", "running", "done", "failed")


def upgrade() -> None:
    ddl.create_table(
        "browser_jobs",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        ddl.defaulted("status", sa.Text, "'queued'"),
        sa.Column("timeout_seconds", sa.Integer, nullable=False),
        sa.Column("flow_run_id", sa.Uuid),
        sa.Column("host", sa.Text),
        ddl.defaulted("attempts", sa.Integer, "0"),
        ddl.timestamp_now("created_at"),
        ddl.timestamp("started_at"),
        ddl.timestamp("finished_at"),
        sa.Column("error", sa.Text),
        sa.Column("result", JSONB),
        ddl.jsonb("counters", "{}"),
        ddl.pkey("browser_jobs", "id"),
        ddl.check("browser_jobs", "kind", f"kind ~ '{KIND_PATTERN}'"),
        ddl.one_of("browser_jobs", "status", STATUSES),
        ddl.check("browser_jobs", "timeout_seconds", "timeout_seconds BETWEEN 1 AND 3600"),
        ddl.check("browser_jobs", "attempts", "attempts >= 0"),
        ddl.check(
            "browser_jobs", "started_when_claimed", "(status = 'queued') = (started_at IS NULL)"
        ),
        ddl.check(
            "browser_jobs",
            "finished_when_ended",
            "(status IN ('done', 'failed')) = (finished_at IS NOT NULL)",
        ),
        ddl.check("browser_jobs", "result_when_done", "result IS NULL OR status = 'done'"),
    )
    ddl.create_index("browser_jobs_status_idx", "browser_jobs", ["status", "created_at"])
    ddl.create_table(
        "browser_mailbox",
        ddl.identity_id(always=True),
        sa.Column("mailbox", sa.Text, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        ddl.timestamp_now("received_at"),
        sa.Column("consumed_by", sa.Uuid),
        ddl.timestamp("consumed_at"),
        ddl.pkey("browser_mailbox", "id"),
        ddl.check("browser_mailbox", "mailbox", f"mailbox ~ '{MAILBOX_PATTERN}'"),
        ddl.check(
            "browser_mailbox",
            "consumed_together",
            "(consumed_by IS NULL) = (consumed_at IS NULL)",
        ),
    )
    ddl.create_index(
        "browser_mailbox_mailbox_idx",
        "browser_mailbox",
        ["mailbox", sa.text("received_at DESC")],
    )
