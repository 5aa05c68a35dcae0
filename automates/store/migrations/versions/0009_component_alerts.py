"""Alerts about the layer's own processes: a crash loop, and its end.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "automates"
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


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _replace(kinds: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("alerts_kind_check"), "alerts", schema=S, type_="check")
    op.create_check_constraint(
        op.f("alerts_kind_check"), "alerts", f"kind IN ({_in(kinds)})", schema=S
    )


def upgrade() -> None:
    _replace(AFTER)


def downgrade() -> None:
    op.execute(f"DELETE FROM {S}.alerts WHERE kind NOT IN ({_in(BEFORE)})")
    _replace(BEFORE)
