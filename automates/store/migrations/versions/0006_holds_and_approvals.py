"""Holds (operator review of an automate) and approvals (who approved which declaration).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa

from automates.store.migrations import ddl

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.create_table(
        "holds",
        ddl.identity_id(always=False),
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        ddl.timestamp_now("held_at"),
        ddl.timestamp("released_at"),
        sa.Column("released_by", sa.Text),
        ddl.pkey("holds", "id"),
        ddl.one_of("holds", "reason", ("misfire",)),
        ddl.check("holds", "released_by_whom", "(released_at IS NULL) = (released_by IS NULL)"),
    )
    ddl.create_index(
        "holds_open_idx", "holds", ["automate", "reason"], unique=True, where="released_at IS NULL"
    )
    ddl.create_table(
        "approvals",
        ddl.identity_id(always=False),
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("approved_by", sa.Text, nullable=False),
        ddl.timestamp_now("approved_at"),
        sa.Column("flow_run_id", sa.Uuid),
        sa.Column("note", sa.Text),
        ddl.pkey("approvals", "id"),
        ddl.one_of("approvals", "stage", ("before_enable", "before_first_run")),
    )
    ddl.create_index(
        "approvals_automate_idx", "approvals", ["automate", "digest", "stage"], unique=True
    )


def downgrade() -> None:
    ddl.drop_table("approvals")
    ddl.drop_table("holds")
