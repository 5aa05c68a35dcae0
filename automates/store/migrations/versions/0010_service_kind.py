"""Service automates: `service` joins the registry's kinds.

Revision ID: 0010
Revises: 0009
"""

from automates.store.migrations import ddl, value_lists

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BEFORE = value_lists.AUTOMATE_KINDS_0001
AFTER = value_lists.AUTOMATE_KINDS_0010


def upgrade() -> None:
    ddl.replace_one_of("automates", "kind", AFTER)


def downgrade() -> None:
    ddl.narrow_one_of("automates", "kind", BEFORE)
