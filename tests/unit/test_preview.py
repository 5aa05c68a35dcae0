"""The preview: fire times from Prefect's own schedule engine, after jitter, quiet hours and
DST, each skipped or deferred tick saying why."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from automates.scheduling.forms import Form, at_form, cron_form, every_form
from automates.scheduling.preview import PreviewSchedule, Tick, TickStatus, preview
from automates.scheduling.quiet_hours import QuietHours


def run(
    schedules: list[PreviewSchedule], start: datetime, count: int, quiet: QuietHours | None = None
) -> list[Tick]:
    return asyncio.run(preview(schedules, start=start, count=count, quiet=quiet))


def local(form: Form, timezone: str, start: datetime, count: int) -> list[str]:
    ticks = run([PreviewSchedule(slug="s", form=form, timezone=timezone)], start, count)
    return [t.at.astimezone(ZoneInfo(timezone)).isoformat() for t in ticks]


# Prefect 3.8.8's CronSchedule, measured here and documented in docs/scheduling.md:
# a nonexistent local time fires one hour early (before the gap, on the old offset);
# a repeated local time fires once, at its first occurrence.
DST = [
    (
        "30 2 * * *",
        "America/New_York",
        datetime(2026, 3, 6, tzinfo=UTC),
        [
            "2026-03-06T02:30:00-05:00",
            "2026-03-07T02:30:00-05:00",
            "2026-03-08T01:30:00-05:00",  # 02:30 does not exist on 8 March
            "2026-03-09T02:30:00-04:00",
        ],
    ),
    (
        "30 1 * * *",
        "America/New_York",
        datetime(2026, 10, 31, tzinfo=UTC),
        [
            "2026-10-31T01:30:00-04:00",
            "2026-11-01T01:30:00-04:00",  # 01:30 happens twice on 1 November: the first only
            "2026-11-02T01:30:00-05:00",
        ],
    ),
    (
        "30 2 * * *",
        "America/New_York",
        datetime(2026, 10, 31, tzinfo=UTC),
        [
            "2026-10-31T02:30:00-04:00",
            "2026-11-01T02:30:00-05:00",
            "2026-11-02T02:30:00-05:00",
        ],
    ),
    (
        "*/30 * * * *",
        "America/New_York",
        datetime(2026, 3, 8, 6, 0, tzinfo=UTC),
        [
            "2026-03-08T01:00:00-05:00",
            "2026-03-08T01:30:00-05:00",
            "2026-03-08T03:00:00-04:00",  # 02:00 and 02:30 do not exist: no tick
            "2026-03-08T03:30:00-04:00",
        ],
    ),
    (
        "*/30 * * * *",
        "America/New_York",
        datetime(2026, 11, 1, 5, 0, tzinfo=UTC),
        [
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T02:00:00-05:00",  # the repeated 01:00 and 01:30 (EST) do not fire
        ],
    ),
    (
        "30 2 * * *",
        "Europe/Paris",
        datetime(2026, 3, 28, tzinfo=UTC),
        ["2026-03-28T02:30:00+01:00", "2026-03-29T01:30:00+01:00", "2026-03-30T02:30:00+02:00"],
    ),
    (
        "30 2 * * *",
        "Europe/Paris",
        datetime(2026, 10, 24, tzinfo=UTC),
        ["2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    ),
    (
        "30 2 * * *",
        "Asia/Makassar",  # WITA, UTC+8 all year: no DST
        datetime(2026, 3, 7, tzinfo=UTC),
        ["2026-03-08T02:30:00+08:00", "2026-03-09T02:30:00+08:00"],
    ),
]


@pytest.mark.parametrize(("cron", "timezone", "start", "expected"), DST)
def test_dst_transitions_follow_prefects_scheduler(
    cron: str, timezone: str, start: datetime, expected: list[str]
) -> None:
    assert local(cron_form(cron), timezone, start, len(expected)) == expected


def test_an_interval_is_elapsed_time_whatever_the_season() -> None:
    # Anchored at midnight local of 2020-01-01 (05:00 UTC in New York), held in UTC: every 6 h
    # stays 6 h of real time across fall back, and whole days keep their UTC time.
    six_hours = local(every_form("6h"), "America/New_York", datetime(2026, 11, 1, 4, tzinfo=UTC), 3)
    assert six_hours == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T06:00:00-05:00",
        "2026-11-01T12:00:00-05:00",
    ]
    for start in (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)):
        ticks = run(
            [PreviewSchedule(slug="d", form=every_form("1d"), timezone="America/New_York")],
            start,
            3,
        )
        assert {t.at.strftime("%H:%M") for t in ticks} == {"05:00"}
    assert local(every_form("1d"), "Asia/Makassar", datetime(2026, 3, 7, tzinfo=UTC), 1) == [
        "2026-03-08T00:00:00+08:00"
    ]


def test_schedules_merge_in_time_order_with_their_offsets() -> None:
    ticks = run(
        [
            PreviewSchedule(slug="hourly", form=cron_form("0 * * * *"), offset_seconds=437),
            PreviewSchedule(slug="once", form=at_form("2026-01-01T00:30:00Z")),
        ],
        datetime(2026, 1, 1, tzinfo=UTC),
        4,
    )
    assert [(t.schedule, t.at.strftime("%H:%M:%S"), t.status) for t in ticks] == [
        ("hourly", "00:07:17", TickStatus.FIRE),
        ("once", "00:30:00", TickStatus.FIRE),
        ("hourly", "01:07:17", TickStatus.FIRE),
        ("hourly", "02:07:17", TickStatus.FIRE),
    ]


HOURLY = [PreviewSchedule(slug="h", form=cron_form("0 * * * *"), timezone="Europe/Paris")]
EVENING = datetime(2026, 1, 10, 19, 0, tzinfo=UTC)  # 20:00 in Paris


def test_quiet_hours_skip_ticks_and_say_why() -> None:
    quiet = QuietHours.model_validate(
        {"start": "22:00", "end": "01:00", "timezone": "Europe/Paris", "action": "skip"}
    )
    ticks = run(HOURLY, EVENING, 6, quiet)
    assert [(t.local.strftime("%H:%M"), t.status) for t in ticks] == [
        ("20:00", TickStatus.FIRE),
        ("21:00", TickStatus.FIRE),
        ("22:00", TickStatus.SKIP),
        ("23:00", TickStatus.SKIP),
        ("00:00", TickStatus.SKIP),
        ("01:00", TickStatus.FIRE),
    ]
    assert ticks[2].reason == "in quiet hours 22:00-01:00 Europe/Paris"


def test_quiet_hours_defer_collapses_a_window_into_one_run_at_its_end() -> None:
    quiet = QuietHours.model_validate(
        {"start": "22:00", "end": "00:30", "timezone": "Europe/Paris", "action": "defer"}
    )
    ticks = run(HOURLY, EVENING, 6, quiet)
    deferred = [t for t in ticks if t.status is TickStatus.DEFER]
    assert [t.local.strftime("%H:%M") for t in deferred] == ["22:00", "23:00", "00:00"]
    end = datetime(2026, 1, 10, 23, 30, tzinfo=UTC)  # 00:30 in Paris
    assert {t.runs_at for t in deferred} == {end}
    assert deferred[0].reason is not None and "one run at the window's end" in deferred[0].reason
    assert all("merged into the run" in (t.reason or "") for t in deferred[1:])


def test_always_quiet_defers_nothing() -> None:
    quiet = QuietHours.model_validate({"start": "00:00", "end": "00:00", "action": "defer"})
    ticks = run(HOURLY, EVENING, 2, quiet)
    assert [t.status for t in ticks] == [TickStatus.SKIP, TickStatus.SKIP]
    assert "always quiet" in (ticks[0].reason or "")
