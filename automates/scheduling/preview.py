"""The next fire times of an automate after jitter, quiet hours and DST.

Fire times come from Prefect's own server-side schedule classes (croniter for cron), given
the exact schedule sync sends, so the preview is what the Prefect scheduler will create,
DST quirks included (docs/scheduling.md). Quiet hours are then applied as the guard applies
them at run time (automates/guard/quiet_hours.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from automates.scheduling.forms import Form
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
    from prefect.server.schemas import schedules as server

    client_side = schedule.prefect
    kind: Any = {
        "CronSchedule": server.CronSchedule,
        "IntervalSchedule": server.IntervalSchedule,
        "RRuleSchedule": server.RRuleSchedule,
    }[type(client_side).__name__]
    server_side: Any = kind.model_validate(client_side.model_dump())
    dates = await server_side.get_dates(n=count, start=start)
    return [datetime.fromtimestamp(d.timestamp(), UTC) for d in dates]


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
