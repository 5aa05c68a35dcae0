"""Circuit breaker transitions: what a run, a probe or an operator does to a breaker.

closed --(threshold consecutive failures)--> open; after the cool-down the `breaker-probe`
automate starts one run (half_open): its success closes the breaker, its failure re-opens it,
and a probe that never reports back re-opens it after another cool-down. Success or findings
reset the count; skipped or cancelled runs count for nothing. Everything here is pure, so the
guard (automates/guard/breaker.py) and the probe (flows/breaker_probe.py) apply one rule; they
lock, read and write the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from automates.states import FAILURE, SUCCESS, BreakerState, RunOutcome


class Breaker(BaseModel):
    """One automate's breaker: a row of the `breakers` table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    automate: str
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = Field(default=0, ge=0)
    opened_at: datetime | None = None  # when it last opened; None exactly when closed
    cooldown_seconds: int = Field(default=3600, ge=1)
    probe_started_at: datetime | None = None  # when its probe run started (half_open)

    @model_validator(mode="after")
    def _opened_when_not_closed(self) -> Breaker:
        if (self.state is BreakerState.CLOSED) != (self.opened_at is None):
            raise ValueError(f"breaker {self.state}: opened_at {self.opened_at}")
        return self


@dataclass(frozen=True)
class Transition:
    """A breaker before and after one change, and what the change means."""

    automate: str
    before: BreakerState
    after: BreakerState
    failures: int
    replayed: bool = False  # a run journaled already: nothing was counted

    @classmethod
    def between(cls, before: Breaker, after: Breaker) -> Transition:
        return cls(before.automate, before.state, after.state, after.consecutive_failures)

    @property
    def opened(self) -> bool:
        return self.before is not BreakerState.OPEN and self.after is BreakerState.OPEN

    @property
    def tripped(self) -> bool:
        """The threshold was reached: the one moment that notifies."""
        return self.before is BreakerState.CLOSED and self.after is BreakerState.OPEN

    @property
    def closed(self) -> bool:
        return self.before is not BreakerState.CLOSED and self.after is BreakerState.CLOSED


def after_run(
    breaker: Breaker,
    outcome: RunOutcome,
    *,
    threshold: int,
    cooldown_seconds: int,
    now: datetime,
) -> Breaker:
    """The breaker once a run ended with `outcome`; the same breaker when it counts for
    nothing (the automate's cool-down is taken from its policy only on a change)."""
    state, failures = breaker.state, breaker.consecutive_failures
    if outcome in SUCCESS:
        state, failures = BreakerState.CLOSED, 0
    elif outcome in FAILURE:
        failures += 1
        # A failed probe re-opens at once; a closed breaker opens at the threshold.
        if breaker.state is BreakerState.HALF_OPEN or (
            breaker.state is BreakerState.CLOSED and failures >= threshold
        ):
            state = BreakerState.OPEN
    if (state, failures) == (breaker.state, breaker.consecutive_failures):
        return breaker
    if state is BreakerState.CLOSED:
        opened_at = None
    else:
        opened_at = now if state is not breaker.state else breaker.opened_at
    return _changed(
        breaker,
        state=state,
        consecutive_failures=failures,
        opened_at=opened_at,
        cooldown_seconds=cooldown_seconds,
        probe_started_at=breaker.probe_started_at if state is BreakerState.HALF_OPEN else None,
    )


def due_for_probe(breaker: Breaker, now: datetime) -> bool:
    """An open breaker past its cool-down, or a half-open one whose probe has not reported
    back within one."""
    if breaker.state is BreakerState.CLOSED:
        return False
    since = (
        breaker.probe_started_at if breaker.state is BreakerState.HALF_OPEN else breaker.opened_at
    )
    return since is not None and (now - since).total_seconds() >= breaker.cooldown_seconds


def on_probe(breaker: Breaker, now: datetime) -> Breaker:
    """What the probe does with a breaker due for it: an open one turns half-open while its
    probe run starts; a half-open one, whose probe run never reported back (it crashed before
    its hooks), re-opens for another cool-down."""
    if breaker.state is BreakerState.HALF_OPEN:
        return _changed(breaker, state=BreakerState.OPEN, opened_at=now, probe_started_at=None)
    if breaker.state is BreakerState.OPEN:
        return _changed(breaker, state=BreakerState.HALF_OPEN, probe_started_at=now)
    raise ValueError(f"the breaker of {breaker.automate} is closed: nothing to probe")


def reset(breaker: Breaker) -> Breaker:
    """Closed by an operator: the count forgotten, the schedules free to run."""
    return _changed(
        breaker,
        state=BreakerState.CLOSED,
        consecutive_failures=0,
        opened_at=None,
        probe_started_at=None,
    )


def _changed(breaker: Breaker, **changes: object) -> Breaker:
    # Validated again (model_copy would not): no rule can leave a row the table refuses.
    return Breaker.model_validate({**breaker.model_dump(), **changes})
