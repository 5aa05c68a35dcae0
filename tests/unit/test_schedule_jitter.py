"""Stable jitter: deterministic, bounded, realised in the Prefect schedule itself."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

from automates.registry.loader import parse_registry
from automates.scheduling.forms import Form, at_form, cron_form, every_form
from automates.scheduling.jitter import jitter_bound, stable_offset
from automates.scheduling.preview import PreviewSchedule, fire_times
from automates.scheduling.realise import prefect_schedule, shifted_cron
from tests.fixtures.projects import automate

START = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("form", "requested", "bound"),
    [
        (cron_form("0 * * * *"), 10_000, 3599),
        (cron_form("0 * * * *"), 600, 600),
        (cron_form("*/15 * * * *"), 3600, 899),
        (cron_form("* * * * *"), 3600, 59),
        (cron_form("30 9 * * 1-5"), 3600, 1799),
        (every_form("10m"), 3600, 599),
        (every_form("2h"), 300, 300),
        (at_form("2026-12-01T09:00:00Z"), 3600, 0),
        (cron_form("0 * * * *"), 0, 0),
    ],
)
def test_the_bound_keeps_every_tick_inside_its_period(
    form: Form, requested: int, bound: int
) -> None:
    assert jitter_bound(form, requested) == bound


def test_the_offset_is_deterministic_bounded_and_spread() -> None:
    offsets = [stable_offset(f"automate-{i}", "hourly", 3599) for i in range(300)]
    assert offsets == [stable_offset(f"automate-{i}", "hourly", 3599) for i in range(300)]
    assert all(0 <= o <= 3599 for o in offsets)
    assert len(set(offsets)) > 250  # 300 hourly automates no longer share one second
    assert stable_offset("a", "hourly", 3599) != stable_offset("a", "daily", 3599)
    assert stable_offset("a", "hourly", 0) == 0


def test_the_offset_is_the_same_in_a_fresh_interpreter() -> None:
    """No dependence on Python's per-process string hash: a restart keeps the offset."""
    code = (
        "from automates.scheduling.jitter import stable_offset;"
        "print(stable_offset('disk-space-check', 'quarter-hourly', 899))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert outputs == {str(stable_offset("disk-space-check", "quarter-hourly", 899))}


@pytest.mark.parametrize(
    ("cron", "offset", "shifted"),
    [
        ("0 * * * *", 437, "7 * * * * 17"),
        ("*/15 * * * *", 62, "1,16,31,46 * * * * 2"),
        ("* * * * *", 42, "* * * * * 42"),
        ("30 9 * * 1-5", 600, "40 9 * * 1-5"),
        ("0 3 * * *", 0, "0 3 * * *"),
    ],
)
def test_a_cron_is_shifted_in_minutes_and_seconds(cron: str, offset: int, shifted: str) -> None:
    assert shifted_cron(cron_form(cron), offset) == shifted


def fires(form: Form, timezone: str, offset: int, count: int = 4) -> list[datetime]:
    schedule = PreviewSchedule(slug="s", form=form, timezone=timezone, offset_seconds=offset)
    return asyncio.run(fire_times(schedule, START, count))


@pytest.mark.parametrize(
    ("form", "timezone"),
    [
        (cron_form("0 * * * *"), "UTC"),
        (cron_form("*/15 * * * *"), "Europe/Paris"),
        (cron_form("30 9 * * 1-5"), "Asia/Makassar"),
        (every_form("10m"), "UTC"),
        (every_form("1d"), "America/New_York"),
    ],
)
def test_prefect_fires_each_tick_exactly_offset_seconds_late(form: Form, timezone: str) -> None:
    offset = stable_offset("some-automate", "s", jitter_bound(form, 3600))
    assert offset > 0
    plain, jittered = fires(form, timezone, 0), fires(form, timezone, offset)
    assert [j - p for j, p in zip(jittered, plain, strict=True)] == [timedelta(seconds=offset)] * 4


def test_each_form_maps_to_its_prefect_schedule() -> None:
    cron = prefect_schedule(cron_form("0 * * * *"), "UTC", 437)
    assert isinstance(cron, CronSchedule) and cron.cron == "7 * * * * 17"
    interval = prefect_schedule(every_form("15m"), "Asia/Makassar", 30)
    assert isinstance(interval, IntervalSchedule)
    assert interval.interval == timedelta(minutes=15)
    assert interval.anchor_date.isoformat() == "2019-12-31T16:00:30+00:00"  # 00:00:30 WITA
    assert interval.timezone == "UTC"
    one_off = prefect_schedule(at_form("2026-12-01T09:00:00+08:00"), "Asia/Makassar", 0)
    assert isinstance(one_off, RRuleSchedule) and one_off.timezone == "UTC"
    assert fires(at_form("2026-12-01T09:00:00+08:00"), "UTC", 0) == [
        datetime(2026, 12, 1, 1, tzinfo=UTC)
    ]


def test_a_declaration_carries_its_offset() -> None:
    registry = parse_registry(
        {
            "automates": [
                automate("a1", jitter_seconds=600, schedules=[{"slug": "h", "cron": "0 * * * *"}]),
                automate("a2", schedules=[{"slug": "h", "cron": "0 * * * *"}]),
            ]
        }
    )
    a1, a2 = registry.automates
    assert a1.jitter_offset(a1.schedules[0]) == stable_offset("a1", "h", 600)
    assert a2.jitter_offset(a2.schedules[0]) == 0


@pytest.mark.parametrize("jitter", [-1, 86_401])
def test_jitter_out_of_range_is_refused(jitter: int) -> None:
    from automates.errors import DeclarationError

    with pytest.raises(DeclarationError) as raised:
        parse_registry({"automates": [automate("a1", jitter_seconds=jitter)]})
    [problem] = raised.value.problems
    assert (problem.automate, problem.field) == ("a1", "jitter_seconds")
