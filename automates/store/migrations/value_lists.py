"""The value lists that a later revision changes (a column's `CHECK (column IN (...))`), each
spelled once: the list as the revision that set it wrote it, then each later revision's list as
its change to the one before, so a revision and its downgrade name the two lists they move
between instead of writing both out again.

A list here is history, like the output of a `ddl` helper: its revision, on every fresh
database, builds from it, so it never changes once a migration uses it. A new change is a new
list named after its revision. A list's order is the order its CHECK spells, and the order
PostgreSQL keeps, so a change names the value each addition follows, not only what it adds.
"""

from __future__ import annotations

from collections.abc import Mapping


def inserted(values: tuple[str, ...], after: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """`values` with each of `after`'s additions placed right behind the value it is keyed by.

    Refuses a key that is not in `values` and an addition that already is: either would be a
    slip in the history, which must fail at import, never become a different CHECK.
    """
    missing = set(after) - set(values)
    added = [value for additions in after.values() for value in additions]
    present = set(added) & set(values)
    if missing or present or len(set(added)) != len(added):
        raise ValueError(f"cannot insert {dict(after)} into {values}")
    return tuple(kept for value in values for kept in (value, *after.get(value, ())))


# `automates.kind`: 0001 set it, 0010 added `service`.
AUTOMATE_KINDS_0001 = ("recurring", "oneshot", "tool", "lib", "meta")
AUTOMATE_KINDS_0010 = (*AUTOMATE_KINDS_0001, "service")

# `alerts.kind`: 0008 set it; 0009, 0015 and 0016 each added kinds.
ALERT_KINDS_0008 = (
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
ALERT_KINDS_0009 = inserted(
    ALERT_KINDS_0008,
    after={
        "reconcile_drift": ("component_crash_loop",),
        "reconcile_clean": ("component_recovered",),
    },
)
ALERT_KINDS_0015 = inserted(
    ALERT_KINDS_0009,
    after={
        "component_crash_loop": ("backup_stale", "backup_drill_failed"),
        "component_recovered": ("backup_fresh", "backup_drill_passed"),
    },
)
ALERT_KINDS_0016 = inserted(
    ALERT_KINDS_0015,
    after={
        "task_run_killed": ("llm_over_budget", "spend_warning", "spend_critical", "audit_finding")
    },
)
