"""The registry: automates, their owning agents and their schedules.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SLUG = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"


def _slug(column: str, table: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} ~ '{SLUG}'", name=op.f(f"{table}_{column}_slug_check"))


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS automates")
    op.create_table(
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
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("automates_pkey")),
        _slug("name", "automates"),
        _slug("caste", "automates"),
        _slug("family", "automates"),
        _slug("work_pool", "automates"),
        sa.CheckConstraint(
            "kind IN ('recurring', 'oneshot', 'tool', 'lib', 'meta')",
            name=op.f("automates_kind_check"),
        ),
        sa.CheckConstraint(
            "timeout_seconds BETWEEN 1 AND 1800", name=op.f("automates_timeout_seconds_check")
        ),
        sa.CheckConstraint(
            "concurrency_limit IS NULL OR concurrency_limit >= 1",
            name=op.f("automates_concurrency_check"),
        ),
        schema="automates",
    )
    op.create_table(
        "automate_agents",
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("agent", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("automate", "agent", name=op.f("automate_agents_pkey")),
        sa.ForeignKeyConstraint(
            ["automate"],
            ["automates.automates.name"],
            name=op.f("automate_agents_automate_fkey"),
            ondelete="CASCADE",
        ),
        _slug("agent", "automate_agents"),
        schema="automates",
    )
    op.create_table(
        "automate_schedules",
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("cron", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("automate", "slug", name=op.f("automate_schedules_pkey")),
        sa.ForeignKeyConstraint(
            ["automate"],
            ["automates.automates.name"],
            name=op.f("automate_schedules_automate_fkey"),
            ondelete="CASCADE",
        ),
        _slug("slug", "automate_schedules"),
        schema="automates",
    )
