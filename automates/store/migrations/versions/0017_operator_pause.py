"""An operator's pause is a hold: the `paused` reason, and who opened it.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

from automates.store.migrations import ddl

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.replace_one_of("holds", "reason", ("misfire", "paused"))
    op.add_column("holds", sa.Column("held_by", sa.Text), schema=ddl.SCHEMA)


def downgrade() -> None:
    op.execute(f"DELETE FROM {ddl.SCHEMA}.holds WHERE reason = 'paused'")
    op.drop_column("holds", "held_by", schema=ddl.SCHEMA)
    ddl.replace_one_of("holds", "reason", ("misfire",))
