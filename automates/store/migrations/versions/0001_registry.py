"""The registry: automates, their owning agents and their schedules.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from automates.store.migrations import ddl, value_lists

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS automates")
    ddl.create_table(
        "automates",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("caste", sa.Text, nullable=False),
        sa.Column("family", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("runbook", sa.Text),
        sa.Column("entrypoint", sa.Text, nullable=False),
        sa.Column("timeout_seconds", sa.Integer, nullable=False),
        sa.Column("concurrency_limit", sa.Integer),
        sa.Column("work_pool", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("declaration", JSONB, nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
        *ddl.created_and_updated(),
        *ddl.slug_pkey("automates", "name"),
        ddl.slug("automates", "caste"),
        ddl.slug("automates", "family"),
        ddl.slug("automates", "work_pool"),
        ddl.one_of("automates", "kind", value_lists.AUTOMATE_KINDS_0001),
        ddl.check("automates", "timeout_seconds", "timeout_seconds BETWEEN 1 AND 1800"),
        ddl.check(
            "automates", "concurrency", "concurrency_limit IS NULL OR concurrency_limit >= 1"
        ),
    )
    ddl.create_table(
        "automate_agents",
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("agent", sa.Text, nullable=False),
        ddl.pkey("automate_agents", "automate", "agent"),
        ddl.foreign_key("automate_agents", "automate", "automates.name", ondelete="CASCADE"),
        ddl.slug("automate_agents", "agent"),
    )
    ddl.create_table(
        "automate_schedules",
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("cron", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False),
        ddl.pkey("automate_schedules", "automate", "slug"),
        ddl.foreign_key("automate_schedules", "automate", "automates.name", ondelete="CASCADE"),
        ddl.slug("automate_schedules", "slug"),
    )
