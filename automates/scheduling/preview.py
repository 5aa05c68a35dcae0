"""The next fire times of an automate after jitter, quiet hours and DST.

Fire times come from Prefect's own server-side schedule classes (croniter for cron), given
the exact schedule sync sends, so the preview is what the Prefect scheduler will create,
DST quirks included (docs/scheduling.md). Quiet hours are then applied as the guard applies
them at run time (automates/guard/quiet_hours.py).

`simulate_outage` applies the misfire policy (automates/scheduling/misfire.py) to the ticks of
a time range during which nothing could run, as the guard applies it at the recovery.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from automates.scheduling.forms import Form
from automates.scheduling.misfire import Decision, Misfire, MissedTick, decide
from automates.scheduling.quiet_hours import QuietAction, QuietHours
from automates.scheduling.realise import PrefectSchedule, prefect_schedule


class TickStatus(StrEnum):
    FIRE = "fire"
    SKIP = "skip"  # inside quiet hours, not run
    DEFER = "defer"  # inside quiet hours, run once at the window's end


class PreviewSchedule(BaseModel):
    """One schedule to preview: its form, timezone and stable jitter offset."""

    model_config = ConfigDict(frozen=True)

    slug: str
    form: Form
    timezone: str = "UTC"
    offset_seconds: int = 0
    became: str = ""

    @property
    def prefect(self) -> PrefectSchedule:
        return prefect_schedule(self.form, self.timezone, self.offset_seconds)


class Tick(BaseModel):
    """One fire time of the preview, and what happens to it."""

    model_config = ConfigDict(frozen=True)

    schedule: str
    at: datetime  # the run's scheduled time (jitter included), UTC
    timezone: str
    offset_seconds: int
    status: TickStatus
    reason: str | None = None
    runs_at: datetime | None = None  # a deferred tick: when its one run starts

    @property
    def local(self) -> datetime:
        from zoneinfo import ZoneInfo

        return self.at.astimezone(ZoneInfo(self.timezone))

    def as_dict(self, timezone: str | None = None) -> dict[str, Any]:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(timezone or self.timezone)
        return {
            "schedule": self.schedule,
            "at": self.at.isoformat(),
            "local": self.at.astimezone(zone).isoformat(),
            "offset_seconds": self.offset_seconds,
            "status": self.status.value,
            "reason": self.reason,
            "runs_at": self.runs_at.astimezone(zone).isoformat() if self.runs_at else None,
        }


async def fire_times(schedule: PreviewSchedule, start: datetime, count: int) -> list[datetime]:
    """The next `count` scheduled times on or after `start`, as Prefect's scheduler makes them."""
    dates = await _server_side(schedule.prefect).get_dates(n=count, start=start)
    return [datetime.fromtimestamp(d.timestamp(), UTC) for d in dates]


class TooManyTicks(ValueError):
    """A time range holds more ticks than asked for."""


def ticks_between(
    client_side: Any, start: datetime, end: datetime, *, limit: int
) -> list[datetime]:
    """Every scheduled time in [start, end) of a Prefect schedule (client-side class, as sync
    sends it and the API returns it), computed by the scheduler's own classes.

    Synchronous, so the guard can call it inside an async flow's event loop: it iterates the
    date generator that Prefect's scheduler itself iterates (`_get_dates_generator`, behind
    the async `get_dates`). Prefect checks at most 1,000 candidates per call, so a long range
    is read in pages. Raises TooManyTicks past `limit`.
    """
    server_side = _server_side(client_side)
    found: list[datetime] = []
    cursor = start
    while cursor < end:
        dates = server_side._get_dates_generator(n=1000, start=cursor, end=end)
        page = sorted(datetime.fromtimestamp(d.timestamp(), UTC) for d in dates)
        page = [d for d in page if cursor <= d < end]
        if not page:
            break
        found.extend(page)
        if len(found) > limit:
            raise TooManyTicks(f"more than {limit} ticks between {start} and {end}")
        cursor = page[-1] + timedelta(microseconds=1)
    return found


def _server_side(client_side: Any) -> Any:
    from prefect.server.schemas import schedules as server

    kind: Any = {
        "CronSchedule": server.CronSchedule,
        "IntervalSchedule": server.IntervalSchedule,
        "RRuleSchedule": server.RRuleSchedule,
    }[type(client_side).__name__]
    return kind.model_validate(client_side.model_dump())


async def preview(
    schedules: list[PreviewSchedule],
    *,
    start: datetime,
    count: int,
    quiet: QuietHours | None = None,
) -> list[Tick]:
    """The next `count` ticks of all `schedules` together, each marked fire, skip or defer."""
    pending: list[tuple[datetime, PreviewSchedule]] = []
    for schedule in schedules:
        pending.extend((at, schedule) for at in await fire_times(schedule, start, count))
    pending.sort(key=lambda item: (item[0], item[1].slug))
    ticks: list[Tick] = []
    deferred_to: set[datetime] = set()
    for at, schedule in pending[:count]:
        status, reason, runs_at = _judge(at, quiet, deferred_to)
        ticks.append(
            Tick(
                schedule=schedule.slug,
                at=at,
                timezone=schedule.timezone,
                offset_seconds=schedule.offset_seconds,
                status=status,
                reason=reason,
                runs_at=runs_at,
            )
        )
    return ticks


def _judge(
    at: datetime, quiet: QuietHours | None, deferred_to: set[datetime]
) -> tuple[TickStatus, str | None, datetime | None]:
    if quiet is None or not quiet.contains(at):
        return TickStatus.FIRE, None, None
    end = quiet.window_end(at)
    if quiet.action is QuietAction.SKIP or end is None:
        note = " (always quiet: nothing to defer to)" if quiet.action is QuietAction.DEFER else ""
        return TickStatus.SKIP, f"in {quiet.label}{note}", None
    if end in deferred_to:
        return TickStatus.DEFER, f"in {quiet.label}: merged into the run at the window's end", end
    deferred_to.add(end)
    return TickStatus.DEFER, f"in {quiet.label}: one run at the window's end", end


class OutageTick(BaseModel):
    """One tick of a simulated outage, and what the misfire policy does with it."""

    model_config = ConfigDict(frozen=True)

    schedule: str
    at: datetime  # UTC
    timezone: str
    fate: str  # run, skip or hold (missed), or on_time (within the grace of the recovery)
    reason: str

    def as_dict(self, timezone: str | None = None) -> dict[str, Any]:
        from zoneinfo import ZoneInfo

        return {
            "schedule": self.schedule,
            "at": self.at.isoformat(),
            "local": self.at.astimezone(ZoneInfo(timezone or self.timezone)).isoformat(),
            "fate": self.fate,
            "reason": self.reason,
        }


class OutagePreview(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime  # the recovery: the first moment a run can start again
    grace_seconds: int
    decision: Decision
    ticks: tuple[OutageTick, ...]  # oldest first
    resumes_at: datetime | None  # the first tick that is not missed


MAX_OUTAGE_TICKS = 10_000


async def simulate_outage(
    schedules: list[PreviewSchedule],
    *,
    start: datetime,
    end: datetime,
    policy: Misfire,
    grace_seconds: int,
    quiet: QuietHours | None = None,
) -> OutagePreview:
    """What the misfire policy does if nothing could run from `start` until `end`.

    The ticks in [start, end - grace) are missed; those in the last `grace` seconds start on
    time at the recovery. The rule is automates/scheduling/misfire.py's, with the recovery at
    `end`, as the guard applies it (quiet hours then apply to each run when it starts).
    """
    grace = timedelta(seconds=grace_seconds)
    pending: list[tuple[datetime, PreviewSchedule]] = []
    for schedule in schedules:
        try:
            dates = ticks_between(schedule.prefect, start, end, limit=MAX_OUTAGE_TICKS)
        except TooManyTicks:
            raise TooManyTicks(
                f"schedule {schedule.slug!r} fires more than {MAX_OUTAGE_TICKS} times in the "
                "outage; shorten it"
            ) from None
        pending.extend((at, schedule) for at in dates)
    pending.sort(key=lambda item: (item[0], item[1].slug))
    missed = [MissedTick(at=at, schedule=s.slug) for at, s in pending if at + grace < end]
    decision = decide(policy, missed, recovered_at=end)
    ticks = []
    for at, schedule in pending:
        ruling = decision.ruling(MissedTick(at=at, schedule=schedule.slug))
        if ruling is None:
            fate, reason = "on_time", f"starts within the {grace_seconds} s grace at the recovery"
        else:
            fate, reason = ruling.fate.value, ruling.reason
        if quiet is not None and fate in ("run", "on_time") and quiet.contains(at):
            reason += f"; then {quiet.label}: {quiet.action.value} when it starts"
        ticks.append(
            OutageTick(
                schedule=schedule.slug,
                at=at,
                timezone=schedule.timezone,
                fate=fate,
                reason=reason,
            )
        )
    following = [at for s in schedules for at in await fire_times(s, max(start, end - grace), 1)]
    return OutagePreview(
        start=start,
        end=end,
        grace_seconds=grace_seconds,
        decision=decision,
        ticks=tuple(ticks),
        resumes_at=min(following) if following else None,
    )
