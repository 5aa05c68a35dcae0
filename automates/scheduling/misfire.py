"""Misfire policies: what happens to fire times missed while the server or the workers were down.

- `skip` (default): run nothing missed; resume at the next future tick.
- `catch_up`: run missed ticks oldest first, at most 3: when more were missed, the 3 most
  recent run and the older ones are skipped. If more than 3 were missed and the oldest is over
  24 h old at the recovery, none runs and the automate is held for operator review.
- `fire_once`: collapse all missed ticks into one run, the newest.

A tick is missed when its run did not start within the grace (`misfire_grace_seconds`) after
it. The missed ticks of one outage are the ticks that became overdue between the last run start
before the outage and the first start after it (the recovery): see `outage_around`. Everything
here is pure, so the guard (automates/guard/misfire.py) and `automates preview
--simulate-outage` apply the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator


class Misfire(StrEnum):
    SKIP = "skip"
    CATCH_UP = "catch_up"
    FIRE_ONCE = "fire_once"


# A run that starts within this many seconds of its tick is on time, not a misfire.
DEFAULT_GRACE_SECONDS = 60
CATCH_UP_LIMIT = 3
# More than CATCH_UP_LIMIT missed and the oldest this old at the recovery: an operator decides.
HOLD_AGE = timedelta(hours=24)


class Fate(StrEnum):
    RUN = "run"
    SKIP = "skip"
    HOLD = "hold"  # not run; the automate is held for review


class MissedTick(BaseModel):
    """One fire time whose run did not start within the grace."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    schedule: str = ""  # which of the automate's schedules (a slug, or a Prefect schedule id)

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("a tick needs a timezone")
        return utc(value)


class Ruling(BaseModel):
    model_config = ConfigDict(frozen=True)

    tick: MissedTick
    fate: Fate
    reason: str


class Decision(BaseModel):
    """What the policy does with the missed ticks of one outage."""

    model_config = ConfigDict(frozen=True)

    policy: Misfire
    recovered_at: datetime
    rulings: tuple[Ruling, ...]  # oldest first
    hold: bool
    summary: str

    @property
    def to_run(self) -> tuple[MissedTick, ...]:
        """The ticks that run, oldest first."""
        return tuple(r.tick for r in self.rulings if r.fate is Fate.RUN)

    def ruling(self, tick: MissedTick) -> Ruling | None:
        return next((r for r in self.rulings if r.tick == tick), None)


class Outage(BaseModel):
    """The gap around an overdue tick in which no run of the automate started."""

    model_config = ConfigDict(frozen=True)

    last_start: datetime | None  # the last run start before it; None: no run ever started
    recovered_at: datetime  # the first run start after it

    def missed(self, tick: datetime, grace: timedelta) -> bool:
        """Whether `tick` fell due inside this outage (its run, if any, started late)."""
        overdue = tick + grace
        return (self.last_start is None or overdue > self.last_start) and (
            overdue < self.recovered_at
        )


def outage_around(overdue: datetime, starts: Iterable[datetime]) -> Outage:
    """The outage in which a tick overdue at `overdue` was missed, from the start times of the
    automate's runs (a run that started late included).

    Every late run of one outage gets the same answer: none of the starts falls between the
    outage's bounds, so whichever overdue moment inside it is asked about, the last start at or
    before it and the first start after it are the same two starts.
    """
    starts = list(starts)
    before = [s for s in starts if s <= overdue]
    after = [s for s in starts if s > overdue]
    if not after:
        raise ValueError("no run started after the tick fell due: nothing has recovered yet")
    return Outage(last_start=max(before) if before else None, recovered_at=min(after))


def decide(policy: Misfire, missed: Iterable[MissedTick], recovered_at: datetime) -> Decision:
    """Which missed ticks run, which are skipped and why, and whether to hold the automate.

    `recovered_at` is the end of the outage; the 24 h age is measured up to it, so the answer
    does not depend on when it is asked.
    """
    ticks = sorted(set(missed), key=lambda t: (t.at, t.schedule))
    recovered_at = utc(recovered_at)
    if not ticks:
        return Decision(
            policy=policy, recovered_at=recovered_at, rulings=(), hold=False, summary="none missed"
        )
    span = _span(ticks)
    if policy is Misfire.SKIP:
        reason = "misfire policy skip: missed ticks do not run"
        return Decision(
            policy=policy,
            recovered_at=recovered_at,
            rulings=tuple(Ruling(tick=t, fate=Fate.SKIP, reason=reason) for t in ticks),
            hold=False,
            summary=f"{span}: none runs; the schedule resumes at its next tick",
        )
    if policy is Misfire.FIRE_ONCE:
        newest = ticks[-1]
        collapsed = f"collapsed into the one run, for the newest tick {show(newest.at)}"
        rulings = [Ruling(tick=t, fate=Fate.SKIP, reason=collapsed) for t in ticks[:-1]]
        rulings.append(
            Ruling(tick=newest, fate=Fate.RUN, reason=f"the one run for {_count(ticks)}")
        )
        return Decision(
            policy=policy,
            recovered_at=recovered_at,
            rulings=tuple(rulings),
            hold=False,
            summary=f"{span}: one run, for the newest ({show(newest.at)})",
        )
    return _catch_up(ticks, recovered_at, span)


def _catch_up(ticks: list[MissedTick], recovered_at: datetime, span: str) -> Decision:
    if len(ticks) <= CATCH_UP_LIMIT:
        return Decision(
            policy=Misfire.CATCH_UP,
            recovered_at=recovered_at,
            rulings=tuple(
                Ruling(tick=t, fate=Fate.RUN, reason=f"caught up ({n} of {len(ticks)})")
                for n, t in enumerate(ticks, 1)
            ),
            hold=False,
            summary=f"{span}: all run, oldest first",
        )
    age = recovered_at - ticks[0].at
    if age > HOLD_AGE:
        reason = (
            f"none runs: more than {CATCH_UP_LIMIT} missed and the oldest over 24 h old; "
            "held for operator review"
        )
        return Decision(
            policy=Misfire.CATCH_UP,
            recovered_at=recovered_at,
            rulings=tuple(Ruling(tick=t, fate=Fate.HOLD, reason=reason) for t in ticks),
            hold=True,
            summary=f"{span}; more than {CATCH_UP_LIMIT} missed and the oldest {_duration(age)} "
            f"before the recovery at {show(recovered_at)} (over 24 h): none runs, held for "
            "operator review",
        )
    kept = ticks[-CATCH_UP_LIMIT:]
    older = f"more than {CATCH_UP_LIMIT} missed: only the {CATCH_UP_LIMIT} most recent run"
    rulings = [Ruling(tick=t, fate=Fate.SKIP, reason=older) for t in ticks[:-CATCH_UP_LIMIT]]
    rulings += [
        Ruling(tick=t, fate=Fate.RUN, reason=f"caught up ({n} of the {CATCH_UP_LIMIT} most recent)")
        for n, t in enumerate(kept, 1)
    ]
    return Decision(
        policy=Misfire.CATCH_UP,
        recovered_at=recovered_at,
        rulings=tuple(rulings),
        hold=False,
        summary=f"{span}: the {CATCH_UP_LIMIT} most recent run, oldest first; "
        f"{len(ticks) - CATCH_UP_LIMIT} older skipped",
    )


def utc(moment: datetime) -> datetime:
    """An aware moment as a plain UTC datetime. Prefect's API models hold pendulum DateTimes,
    which lose their timezone when a timedelta is added to them."""
    return datetime.fromtimestamp(moment.timestamp(), UTC)


def show(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _count(ticks: list[MissedTick]) -> str:
    return f"{len(ticks)} missed tick" + ("s" if len(ticks) != 1 else "")


def _span(ticks: list[MissedTick]) -> str:
    if len(ticks) == 1:
        return f"1 missed tick ({show(ticks[0].at)})"
    return f"{_count(ticks)} from {show(ticks[0].at)} to {show(ticks[-1].at)}"


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
