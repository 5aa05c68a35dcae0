"""The webhook's callers: one named, revocable token each.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa

from automates.store.migrations import ddl

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.create_table(
        "webhook_callers",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_sha256", sa.Text, nullable=False),
        sa.Column("automates", ddl.JSONB),
        sa.Column("created_by", sa.Text, nullable=False),
        ddl.timestamp_now("created_at"),
        ddl.timestamp("rotated_at"),
        ddl.timestamp("last_used_at"),
        ddl.timestamp("revoked_at"),
        sa.Column("revoked_by", sa.Text),
        *ddl.slug_pkey("webhook_callers", "name"),
    )
    ddl.create_index("webhook_callers_token_idx", "webhook_callers", ["token_sha256"], unique=True)


def downgrade() -> None:
    ddl.drop_table("webhook_callers")
