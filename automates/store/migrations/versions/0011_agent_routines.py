"""Agents' routines (made through the layer's MCP tools) and the journal of their tool calls.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa

from automates.store.migrations import ddl

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OUTCOMES = ("ok", "refused", "failed")


def upgrade() -> None:
    ddl.create_table(
        "agent_routines",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("spec", ddl.JSONB, nullable=False),
        *ddl.created_and_updated(),
        *ddl.slug_pkey("agent_routines", "name"),
        ddl.slug("agent_routines", "agent"),
    )
    ddl.create_index("agent_routines_agent_idx", "agent_routines", ["agent"])
    ddl.create_table(
        "agent_tool_calls",
        ddl.identity_id(always=True),
        ddl.timestamp_now("called_at"),
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("tool", sa.Text, nullable=False),
        ddl.jsonb("arguments", "{}"),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        ddl.pkey("agent_tool_calls", "id"),
        ddl.one_of("agent_tool_calls", "outcome", OUTCOMES),
    )
    ddl.create_index("agent_tool_calls_agent_idx", "agent_tool_calls", ["agent", "id"])


def downgrade() -> None:
    ddl.drop_table("agent_tool_calls")
    ddl.drop_table("agent_routines")
