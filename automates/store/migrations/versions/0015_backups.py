"""Backups and restore drills: their alert kinds (a stale backup, a failed drill, and their ends).

The drills' own records live beside each dump, not here (decision 0045): this revision only
widens the outbox's kind list.

Revision ID: 0015
Revises: 0014
"""

from automates.store.migrations import ddl

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The list 0009 left, in its order.
BEFORE = (
    "run_completed",
    "run_findings",
    "run_failed",
    "breaker_opened",
    "held",
    "approval_waiting",
    "missed_tick",
    "browser_job_lost",
    "task_run_over_budget",
    "task_run_killed",
    "reconcile_drift",
    "component_crash_loop",
    "breaker_closed",
    "released",
    "approval_decided",
    "tick_recovered",
    "reconcile_clean",
    "component_recovered",
    "dead_letter",
    "digest",
)
AFTER = (
    *BEFORE[:12],
    "backup_stale",
    "backup_drill_failed",
    *BEFORE[12:18],
    "backup_fresh",
    "backup_drill_passed",
    *BEFORE[18:],
)


def upgrade() -> None:
    ddl.replace_one_of("alerts", "kind", AFTER)


def downgrade() -> None:
    ddl.narrow_one_of("alerts", "kind", BEFORE)
