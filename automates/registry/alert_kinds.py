"""What the layer alerts about, and which alert ends which condition.

An alert either opens a condition (a breaker opened, an automate held, a tick missed), reports a
run's outcome, or resolves a condition an earlier alert opened. A resolving alert is delivered
only where the alert it resolves was delivered, once (automates/alerts/deliverer.py).

The kinds are declared (an automate's `alerts:` names them, the store's CHECK constraints list
them), so they sit with the declarations, below the store and the alerts that deliver them.
"""

from __future__ import annotations

from enum import StrEnum


class AlertKind(StrEnum):
    # A run's outcome, routed by the automate's `delivery` (mode and routes).
    RUN_COMPLETED = "run_completed"
    RUN_FINDINGS = "run_findings"
    RUN_FAILED = "run_failed"  # Failed, Crashed, TimedOut
    # Conditions, routed by `alerts:` (routes file, overridable per automate).
    BREAKER_OPENED = "breaker_opened"
    HELD = "held"
    APPROVAL_WAITING = "approval_waiting"
    MISSED_TICK = "missed_tick"
    BROWSER_JOB_LOST = "browser_job_lost"
    TASK_RUN_OVER_BUDGET = "task_run_over_budget"
    TASK_RUN_KILLED = "task_run_killed"
    LLM_OVER_BUDGET = "llm_over_budget"  # a facade call refused: the agent's budget is spent
    SPEND_WARNING = "spend_warning"  # an agent's (or the platform's) day passed a threshold
    SPEND_CRITICAL = "spend_critical"
    AUDIT_FINDING = "audit_finding"  # one finding of the nightly journal audit
    RECONCILE_DRIFT = "reconcile_drift"
    COMPONENT_CRASH_LOOP = "component_crash_loop"  # a supervised process keeps dying
    BACKUP_STALE = "backup_stale"  # no backup newer than the threshold passed a drill
    BACKUP_DRILL_FAILED = "backup_drill_failed"  # a restore drill failed or was refused
    # Resolutions of the conditions above.
    BREAKER_CLOSED = "breaker_closed"
    RELEASED = "released"
    APPROVAL_DECIDED = "approval_decided"
    TICK_RECOVERED = "tick_recovered"
    RECONCILE_CLEAN = "reconcile_clean"
    COMPONENT_RECOVERED = "component_recovered"
    BACKUP_FRESH = "backup_fresh"
    BACKUP_DRILL_PASSED = "backup_drill_passed"
    # The deliverer's own: an alert that could not be delivered, and a rate-limited batch.
    DEAD_LETTER = "dead_letter"
    DIGEST = "digest"

    @property
    def resolved(self) -> AlertKind | None:
        """The kind of condition this alert ends, if it is a resolution."""
        return _RESOLVES.get(self)

    @property
    def is_outcome(self) -> bool:
        return self in RUN_OUTCOMES

    @property
    def routed_by_alerts(self) -> bool:
        """Whether `alerts:` routes it (conditions); outcomes follow `delivery`, resolutions
        follow the alert they resolve, dead letters go to the fallback route."""
        return not (self.is_outcome or self.resolved or self in _DELIVERER_OWN)


RUN_OUTCOMES = frozenset({AlertKind.RUN_COMPLETED, AlertKind.RUN_FINDINGS, AlertKind.RUN_FAILED})
_DELIVERER_OWN = frozenset({AlertKind.DEAD_LETTER, AlertKind.DIGEST})
_RESOLVES = {
    AlertKind.BREAKER_CLOSED: AlertKind.BREAKER_OPENED,
    AlertKind.RELEASED: AlertKind.HELD,
    AlertKind.APPROVAL_DECIDED: AlertKind.APPROVAL_WAITING,
    AlertKind.TICK_RECOVERED: AlertKind.MISSED_TICK,
    AlertKind.RECONCILE_CLEAN: AlertKind.RECONCILE_DRIFT,
    AlertKind.COMPONENT_RECOVERED: AlertKind.COMPONENT_CRASH_LOOP,
    AlertKind.BACKUP_FRESH: AlertKind.BACKUP_STALE,
    AlertKind.BACKUP_DRILL_PASSED: AlertKind.BACKUP_DRILL_FAILED,
}
# The kinds an operator may route in `alerts:` (and override per automate).
ROUTABLE = tuple(kind for kind in AlertKind if kind.routed_by_alerts)


def condition(kind: AlertKind, subject: str | None) -> str | None:
    """The condition an alert opens or resolves (`breaker_opened:nightly-backup`), if any; its
    subject is the automate, or the layer's component for the component kinds."""
    opened = kind.resolved or (kind if kind.routed_by_alerts else None)
    if opened is None:
        return None
    return f"{opened.value}:{subject or '-'}"


class Channel(StrEnum):
    """Where a route sends (automates/alerts/channels.py sends on each)."""

    SLACK = "slack"
    TEAMS = "teams"
    DISCORD = "discord"
    EMAIL = "email"
    WEBHOOK = "webhook"
    LOG = "log"
