"""Circuit breakers, and the breaker state after each journaled crash.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATES = "'closed', 'open', 'half_open'"


def upgrade() -> None:
    op.create_table(
        "breakers",
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default=sa.text("'closed'")),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("opened_at", sa.DateTime(timezone=True)),
        sa.Column("cooldown_seconds", sa.Integer, nullable=False, server_default=sa.text("3600")),
        sa.Column("probe_started_at", sa.DateTime(timezone=True)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("automate", name=op.f("breakers_pkey")),
        sa.CheckConstraint(f"state IN ({STATES})", name=op.f("breakers_state_check")),
        sa.CheckConstraint(
            "consecutive_failures >= 0", name=op.f("breakers_consecutive_failures_check")
        ),
        sa.CheckConstraint("cooldown_seconds >= 1", name=op.f("breakers_cooldown_seconds_check")),
        sa.CheckConstraint(
            "(state = 'closed') = (opened_at IS NULL)",
            name=op.f("breakers_opened_when_open_check"),
        ),
        schema="automates",
    )
    op.add_column("crash_journal", sa.Column("breaker_state", sa.Text), schema="automates")
    op.create_check_constraint(
        op.f("crash_journal_breaker_state_check"),
        "crash_journal",
        f"breaker_state IS NULL OR breaker_state IN ({STATES})",
        schema="automates",
    )
