"""The dead-man check: the newest due tick of every active schedule must have run.

The reference system's worst failure was silence: a scheduled line pointing at a script that
no longer existed, failing every day without anyone seeing it; a scheduler that died months
before anyone noticed. Reconcile proves a schedule exists and the breaker counts failures,
but neither sees a tick that simply never ran: no worker serves the pool, the server's
scheduler is stopped, the run's process died without a state. This rule does.

For each active schedule of a recurring automate, the newest tick due at least `grace` ago
(and after the schedule's last change: a schedule misses nothing before it exists) must have
a run that started. It is **missed** when it has no run at all (the scheduler never created
it), when its run is still waiting (Scheduled, Late, Pending: no worker took it), or when its
run Crashed (the process running it died; the guard could not journal it). Failed runs are the
breaker's business; a paused run awaiting approval is the approver's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from automates.scheduling.misfire import show
from automates.scheduling.preview import TooManyTicks, ticks_between

# How far back the newest tick is looked for, widening only while nothing is found: a
# frequent schedule is answered from a short window, a yearly one from a long one.
LOOKBACKS = (
    timedelta(hours=2),
    timedelta(days=1),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=366),
)
MAX_TICKS = 5000
WAITING = ("SCHEDULED", "PENDING")


class Missed(BaseModel):
    """One schedule whose newest due tick did not run."""

    model_config = ConfigDict(frozen=True)

    automate: str
    schedule: str
    tick: datetime
    state: str | None  # the tick's run's state name; None: no run
    reason: str


def newest_due(schedule: Any, since: datetime, until: datetime) -> datetime | None:
    """The newest tick of a Prefect schedule in [since, until), or None."""
    for back in LOOKBACKS:
        start = max(since, until - back)
        try:
            ticks = ticks_between(schedule, start, until, limit=MAX_TICKS)
        except TooManyTicks:
            continue  # impossible for a real schedule over 2 h; widen rather than fail
        if ticks:
            return ticks[-1]
        if start == since:
            return None
    return None


def why_missed(state_type: str | None, state_name: str | None, pool: str | None) -> str | None:
    """Why a tick whose run is in this state (None: no run) did not run; None when it ran
    (or is running, or is someone else's business)."""
    if state_type is None:
        return "no flow run exists for it: Prefect's scheduler never created one"
    if state_type in WAITING:
        # Late, Scheduled, Pending, AwaitingConcurrencySlot...: it never started.
        return (
            f"its run is still {state_name}: it never started "
            f"(does a worker serve pool {pool or '?'}?)"
        )
    if state_type == "CRASHED":
        return "its run Crashed: the process running it died before it could finish"
    return None


def describe(missed: Missed) -> str:
    return f"{missed.automate} ({missed.schedule}) missed {show(missed.tick)}: {missed.reason}"
