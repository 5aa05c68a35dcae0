"""Backups and restore drills: their alert kinds (a stale backup, a failed drill, and their ends).

The drills' own records live beside each dump, not here (decision 0045): this revision only
widens the outbox's kind list.

Revision ID: 0015
Revises: 0014
"""

from automates.store.migrations import ddl, value_lists

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BEFORE = value_lists.ALERT_KINDS_0009
AFTER = value_lists.ALERT_KINDS_0015


def upgrade() -> None:
    ddl.replace_one_of("alerts", "kind", AFTER)


def downgrade() -> None:
    ddl.narrow_one_of("alerts", "kind", BEFORE)
