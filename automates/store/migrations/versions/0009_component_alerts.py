"""Alerts about the layer's own processes: a crash loop, and its end.

Revision ID: 0009
Revises: 0008
"""

from automates.store.migrations import ddl, value_lists

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BEFORE = value_lists.ALERT_KINDS_0008
AFTER = value_lists.ALERT_KINDS_0009


def upgrade() -> None:
    ddl.replace_one_of("alerts", "kind", AFTER)


def downgrade() -> None:
    ddl.narrow_one_of("alerts", "kind", BEFORE)
