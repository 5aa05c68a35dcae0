"""The guard's quiet-hours pre-check: a run whose tick falls inside its automate's quiet
window ends at once, in a Completed state the Prefect UI shows by name.

- `skip`: the run ends as "Skipped", its message naming the window.
- `defer`: the run ends as "Deferred", after asking Prefect for one run of the same deployment
  scheduled at the window's end. The request carries an idempotency key made of the
  deployment and that end, so every tick of one window collapses into the same single run.

The tick is the run's scheduled time (a late run is judged by when it should have started,
as the preview judges it); a run tagged `quiet-hours:override` (an operator's explicit manual
run) is let through. A run that is not from a deployment cannot be deferred and is skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect.client.schemas.objects import FlowRun, State
from prefect.states import Completed

from automates import principal
from automates.guard.context import RunContext
from automates.guard.orchestrator import NewRun
from automates.scheduling.quiet_hours import QuietAction, QuietHours

OVERRIDE_TAG = "quiet-hours:override"
DEFERRED_TAG = "quiet-hours:deferred"


class QuietHoursCheck:
    """A tick inside the automate's quiet window is skipped, or deferred to the window's end."""

    name = "quiet-hours"

    def check(self, run: RunContext) -> State | None:
        quiet = run.policy.quiet_hours
        if quiet is None:
            return None
        flow_run = run.flow_run
        tick = _tick(flow_run)
        if not quiet.contains(tick):
            return None
        if flow_run is not None and OVERRIDE_TAG in (flow_run.tags or ()):
            return None
        if quiet.action is QuietAction.SKIP:
            return skipped(quiet, tick)
        end = quiet.window_end(tick)
        if end is None or flow_run is None or flow_run.deployment_id is None:
            reason = "always quiet" if quiet.always else "not a deployment run"
            return skipped(quiet, tick, f" (defer impossible: {reason})")
        deferred = run.orchestrator.create_run(deferral(flow_run, end))
        return Completed(
            name="Deferred",
            message=f"deferred: tick {_show(tick)} is in {quiet.label}; "
            f"one run at {_show(end)} (flow run {deferred})",
        )


def skipped(quiet: QuietHours, tick: datetime, note: str = "") -> State:
    return Completed(
        name="Skipped", message=f"skipped: tick {_show(tick)} is in {quiet.label}{note}"
    )


def deferral(flow_run: FlowRun, end: datetime) -> NewRun:
    """The one run of the deployment at the window's end: every tick of one window asks for
    it under the same key."""
    assert flow_run.deployment_id is not None
    key = f"quiet-hours-defer:{flow_run.deployment_id}:{end.astimezone(UTC).isoformat()}"
    return NewRun(
        flow_run.deployment_id,
        scheduled_time=end,
        idempotency_key=key,
        tags=(DEFERRED_TAG, principal.tag(principal.SYSTEM)),
        parameters=dict(flow_run.parameters or {}),
    )


def _tick(flow_run: Any | None) -> datetime:
    scheduled = getattr(flow_run, "expected_start_time", None)
    return scheduled.astimezone(UTC) if scheduled is not None else datetime.now(UTC)


def _show(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
