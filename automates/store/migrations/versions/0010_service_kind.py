"""Service automates: `service` joins the registry's kinds.

Revision ID: 0010
Revises: 0009
"""

from automates.store.migrations import ddl

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BEFORE = ("recurring", "oneshot", "tool", "lib", "meta")
AFTER = (*BEFORE, "service")


def upgrade() -> None:
    ddl.replace_one_of("automates", "kind", AFTER)


def downgrade() -> None:
    ddl.narrow_one_of("automates", "kind", BEFORE)
