"""Holds (operator review of an automate) and approvals (who approved which declaration).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

S = "automates"


def _ck(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"{table}_{name}_check"))


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column(
            "held_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.Column("released_by", sa.Text),
        sa.PrimaryKeyConstraint("id", name=op.f("holds_pkey")),
        _ck("holds", "reason", "reason IN ('misfire')"),
        _ck("holds", "released_by_whom", "(released_at IS NULL) = (released_by IS NULL)"),
        schema=S,
    )
    op.create_index(
        "holds_open_idx",
        "holds",
        ["automate", "reason"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("automate", sa.Text, nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("approved_by", sa.Text, nullable=False),
        sa.Column(
            "approved_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("flow_run_id", sa.Uuid),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("id", name=op.f("approvals_pkey")),
        _ck("approvals", "stage", "stage IN ('before_enable', 'before_first_run')"),
        schema=S,
    )
    op.create_index(
        "approvals_automate_idx",
        "approvals",
        ["automate", "digest", "stage"],
        unique=True,
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("approvals", schema=S)
    op.drop_table("holds", schema=S)
