"""Circuit breakers, and the breaker state after each journaled crash.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from automates.store.migrations import ddl

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATES = ("closed", "open", "half_open")


def upgrade() -> None:
    ddl.create_table(
        "breakers",
        sa.Column("automate", sa.Text, nullable=False),
        ddl.defaulted("state", sa.Text, "'closed'"),
        ddl.defaulted("consecutive_failures", sa.Integer, "0"),
        ddl.timestamp("opened_at"),
        ddl.defaulted("cooldown_seconds", sa.Integer, "3600"),
        ddl.timestamp("probe_started_at"),
        ddl.timestamp_now("updated_at"),
        ddl.pkey("breakers", "automate"),
        ddl.one_of("breakers", "state", STATES),
        ddl.check("breakers", "consecutive_failures", "consecutive_failures >= 0"),
        ddl.check("breakers", "cooldown_seconds", "cooldown_seconds >= 1"),
        ddl.check("breakers", "opened_when_open", "(state = 'closed') = (opened_at IS NULL)"),
    )
    op.add_column("crash_journal", sa.Column("breaker_state", sa.Text), schema=ddl.SCHEMA)
    ddl.add_check(
        "crash_journal",
        "breaker_state",
        f"breaker_state IS NULL OR breaker_state IN ({ddl.quoted(STATES)})",
    )
