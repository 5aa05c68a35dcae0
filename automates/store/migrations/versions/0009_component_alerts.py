"""Alerts about the layer's own processes: a crash loop, and its end.

Revision ID: 0009
Revises: 0008
"""

from automates.store.migrations import ddl

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

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
    "breaker_closed",
    "released",
    "approval_decided",
    "tick_recovered",
    "reconcile_clean",
    "dead_letter",
    "digest",
)
AFTER = (*BEFORE[:11], "component_crash_loop", *BEFORE[11:16], "component_recovered", *BEFORE[16:])


def upgrade() -> None:
    ddl.replace_one_of("alerts", "kind", AFTER)


def downgrade() -> None:
    ddl.narrow_one_of("alerts", "kind", BEFORE)
