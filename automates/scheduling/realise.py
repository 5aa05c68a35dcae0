"""A resolved form (plus its jitter offset) as the Prefect schedule the server runs.

- cron → `CronSchedule`. With an offset, the minute field is shifted and a sixth field gives
  the seconds: Prefect's croniter reads `7,22,37,52 * * * * 17` as "at :07:17, :22:17, ...".
  The schedule stays a cron schedule in the UI, with the offset visible.
- every → `IntervalSchedule` anchored at 2020-01-01 00:00 in the schedule's timezone plus the
  offset, so "every 15m" ticks on the quarter hours (plus the jitter). The anchor is given in
  UTC and the schedule's timezone is UTC: an interval is elapsed time, the same whatever the
  season (docs/scheduling.md, DST).
- at → `RRuleSchedule` `DTSTART:<utc>` + `FREQ=DAILY;COUNT=1`: exactly one run, kept as a
  schedule of the deployment so sync and reconcile see it like any other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from prefect.client.schemas.schedules import (
    CronSchedule,
    IntervalSchedule,
    RRuleSchedule,
)

from automates.scheduling.forms import Form, FormKind
from automates.scheduling.jitter import cron_minutes

INTERVAL_ANCHOR = datetime(2020, 1, 1)  # Prefect's own default anchor date
PrefectSchedule = CronSchedule | IntervalSchedule | RRuleSchedule


def shifted_cron(form: Form, offset: int) -> str:
    """The cron expression of `form` moved later by `offset` seconds (see jitter_bound)."""
    assert form.cron is not None
    if offset == 0:
        return form.cron
    minutes_shift, seconds = divmod(offset, 60)
    fields = form.cron.split()
    if minutes_shift:
        fields[0] = ",".join(str(m + minutes_shift) for m in cron_minutes(form))
    if seconds:
        fields.append(str(seconds))
    return " ".join(fields)


def interval_anchor(timezone: str, offset: int) -> datetime:
    return INTERVAL_ANCHOR.replace(tzinfo=ZoneInfo(timezone)) + timedelta(seconds=offset)


def one_off_rrule(moment: datetime) -> str:
    return f"DTSTART:{moment.astimezone(UTC):%Y%m%dT%H%M%S}\nRRULE:FREQ=DAILY;COUNT=1"


def prefect_schedule(form: Form, timezone: str, offset: int = 0) -> PrefectSchedule:
    if form.kind is FormKind.CRON:
        return CronSchedule(cron=shifted_cron(form, offset), timezone=timezone)
    if form.kind is FormKind.EVERY:
        assert form.every_seconds is not None
        # Held in UTC: Prefect evaluates a zoned interval's first tick in elapsed seconds but
        # later ones in calendar days, so a whole-day interval in a DST zone would land an hour
        # apart depending on the season the scheduler happened to start in.
        return IntervalSchedule(
            interval=timedelta(seconds=form.every_seconds),
            anchor_date=interval_anchor(timezone, offset).astimezone(UTC),
            timezone="UTC",
        )
    assert form.at is not None
    return RRuleSchedule(rrule=one_off_rrule(form.at), timezone="UTC")


def prefect_yaml_fields(schedule: PrefectSchedule) -> dict[str, object]:
    """The keys of a `prefect.yaml` schedule entry for this schedule."""
    if isinstance(schedule, CronSchedule):
        return {"cron": schedule.cron, "timezone": schedule.timezone}
    if isinstance(schedule, IntervalSchedule):
        return {
            "interval": schedule.interval.total_seconds(),
            "anchor_date": schedule.anchor_date.isoformat(),
            "timezone": schedule.timezone,
        }
    return {"rrule": schedule.rrule, "timezone": schedule.timezone}
