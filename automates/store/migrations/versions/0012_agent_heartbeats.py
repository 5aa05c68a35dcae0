"""Agents' heartbeats: one configuration an agent.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa

from automates.store.migrations import ddl

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.create_table(
        "agent_heartbeats",
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("config", ddl.JSONB, nullable=False),
        *ddl.created_and_updated(),
        *ddl.slug_pkey("agent_heartbeats", "agent"),
    )


def downgrade() -> None:
    ddl.drop_table("agent_heartbeats")
