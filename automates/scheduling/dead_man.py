"""The dead-man check: every tick of every active schedule that fell due must have run.

The reference system's worst failure was silence: a scheduled line pointing at a script that
no longer existed, failing every day without anyone seeing it; a scheduler that died months
before anyone noticed. Reconcile proves a schedule exists and the breaker counts failures,
but neither sees a tick that simply never ran: no worker serves the pool, the server's
scheduler is stopped, the run's process died without a state. This rule does.

Each check judges the ticks due at least `grace` ago that the previous completed check did
not judge (its watermark, flows/missed_runs.py), so ticks that fell due while the check
itself was down are judged when it runs again. A schedule misses nothing before its last
change, and the look-back is bounded (`LOOK_BACK`, `MAX_JUDGED`): older ticks are counted as
not judged. A tick is **missed** when it has no run at all (the scheduler never created it),
when its run is still waiting (Scheduled, Late, Pending: no worker took it), or when its run
Crashed (the process running it died; the guard could not journal it). Failed runs are the
breaker's business; a paused run awaiting approval is the approver's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from automates.scheduling.misfire import show
from automates.scheduling.preview import TooManyTicks, ticks_between

# How far back one check judges: a week of an outage (of the layer or of the check), at
# most MAX_JUDGED ticks of a schedule (the newest), so one finding stays readable and one
# check's reads stay bounded. Ticks due before that are counted, up to MAX_COUNTED.
LOOK_BACK = timedelta(days=7)
MAX_JUDGED = 500
MAX_COUNTED = 10_000
WAITING = ("SCHEDULED", "PENDING")


class Due(BaseModel):
    """The ticks of one schedule a check judges, and how many due ones it leaves unjudged."""

    model_config = ConfigDict(frozen=True)

    ticks: tuple[datetime, ...]  # oldest first
    unjudged: int = 0  # due before the look-back; MAX_COUNTED means "at least"


class Miss(BaseModel):
    """One tick that did not run."""

    model_config = ConfigDict(frozen=True)

    tick: datetime
    state: str | None  # the tick's run's state name; None: no run
    reason: str


class Missed(BaseModel):
    """One schedule's ticks that did not run, as one check found them."""

    model_config = ConfigDict(frozen=True)

    automate: str
    schedule: str
    misses: tuple[Miss, ...]  # oldest first, never empty
    unjudged: int = 0

    @property
    def newest(self) -> Miss:
        return self.misses[-1]


def due_ticks(
    schedule: Any, *, since: datetime, until: datetime, judged_until: datetime | None
) -> Due:
    """The ticks of a Prefect schedule to judge: those in [start, until), where start is the
    latest of the schedule's last change (`since`), the previous check's watermark
    (`judged_until`) and the look-back; at most the newest MAX_JUDGED of them.

    The due ticks left out are counted as unjudged only when there is a watermark: without
    one the check has no outage of its own to account for (its first run, or its history
    deleted), and the look-back simply bounds what it reads."""
    start = since if judged_until is None else max(since, judged_until)
    window = max(start, until - LOOK_BACK)
    ticks, complete = _newest(schedule, window, until)
    judged = tuple(ticks[-MAX_JUDGED:])
    if judged_until is None:
        return Due(ticks=judged)
    if not complete:
        return Due(ticks=judged, unjudged=MAX_COUNTED)
    unjudged = len(ticks) - len(judged) + _count(schedule, start, window)
    return Due(ticks=judged, unjudged=min(unjudged, MAX_COUNTED))


def _newest(schedule: Any, start: datetime, end: datetime) -> tuple[list[datetime], bool]:
    """The ticks in [start, end), all of them (True) or, past MAX_COUNTED, only the newest."""
    complete = True
    while True:
        try:
            return ticks_between(schedule, start, end, limit=MAX_COUNTED), complete
        except TooManyTicks:
            # A schedule of seconds over hours: read a shorter, later part of the range.
            start, complete = end - (end - start) / 8, False


def _count(schedule: Any, start: datetime, end: datetime) -> int:
    if start >= end:
        return 0
    try:
        return len(ticks_between(schedule, start, end, limit=MAX_COUNTED))
    except TooManyTicks:
        return MAX_COUNTED


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


def judge(
    tick: datetime, runs: Sequence[tuple[str | None, str | None]], pool: str | None
) -> Miss | None:
    """The miss of a tick whose runs are in these states (type, name), or None when one of
    them started."""
    verdicts = [(why_missed(kind, name, pool), name) for kind, name in runs]
    verdicts = verdicts or [(why_missed(None, None, pool), None)]
    if any(reason is None for reason, _ in verdicts):
        return None
    reason, state = verdicts[0]
    return Miss(tick=tick, state=state, reason=reason or "")


def describe(missed: Missed) -> str:
    """One line: the missed ticks grouped by why, then the count of the unjudged ones."""
    by_reason: dict[str, list[datetime]] = {}
    for miss in missed.misses:
        by_reason.setdefault(miss.reason, []).append(miss.tick)
    parts = [f"{_ticks(ticks)} ({reason})" for reason, ticks in by_reason.items()]
    count = len(missed.misses)
    line = f"{missed.automate} ({missed.schedule}) missed {count} tick{'s' if count > 1 else ''}"
    line += ": " + "; ".join(parts)
    if missed.unjudged:
        line += f"; and {unjudged_text(missed.unjudged)} not judged"
    return line


def unjudged_text(count: int) -> str:
    at_least = "at least " if count >= MAX_COUNTED else ""
    return f"{at_least}{count} earlier tick{'s' if count > 1 else ''}"


def _ticks(ticks: list[datetime]) -> str:
    if len(ticks) > 4:
        return f"{show(ticks[0])} ... {show(ticks[-1])} ({len(ticks)} ticks)"
    return ", ".join(show(t) for t in ticks)
