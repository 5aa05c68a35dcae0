"""Who asked for each run: the execution journal's `principal`.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

from automates.store.migrations import ddl

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("execution_journal", sa.Column("principal", sa.Text), schema=ddl.SCHEMA)


def downgrade() -> None:
    op.drop_column("execution_journal", "principal", schema=ddl.SCHEMA)
