"""Quiet hours: windows in a timezone, across midnight, always-quiet, and where they end."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from automates.errors import DeclarationError
from automates.registry.loader import parse_registry
from automates.scheduling.quiet_hours import QuietAction, QuietHours
from tests.fixtures.projects import automate

NIGHT = QuietHours.model_validate(
    {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"}
)  # wraps midnight
LUNCH = QuietHours.model_validate({"start": "12:00", "end": "13:30", "timezone": "Asia/Makassar"})
ALWAYS = QuietHours.model_validate({"start": "09:00", "end": "09:00"})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "moment", "quiet"),
    [
        (NIGHT, utc(2026, 1, 10, 20, 59), False),  # 21:59 Paris (UTC+1)
        (NIGHT, utc(2026, 1, 10, 21, 0), True),  # 22:00: start is inside
        (NIGHT, utc(2026, 1, 10, 23, 30), True),  # 00:30, after midnight
        (NIGHT, utc(2026, 1, 11, 5, 59), True),  # 06:59
        (NIGHT, utc(2026, 1, 11, 6, 0), False),  # 07:00: end is outside
        (NIGHT, utc(2026, 7, 10, 20, 30), True),  # 22:30 Paris in summer (UTC+2)
        (NIGHT, utc(2026, 7, 11, 5, 0), False),  # 07:00 Paris in summer
        (LUNCH, utc(2026, 1, 10, 3, 59), False),  # 11:59 WITA
        (LUNCH, utc(2026, 1, 10, 4, 0), True),
        (LUNCH, utc(2026, 1, 10, 5, 29), True),
        (LUNCH, utc(2026, 1, 10, 5, 30), False),
        (ALWAYS, utc(2026, 1, 10, 9, 0), True),
        (ALWAYS, utc(2026, 1, 10, 15, 0), True),
    ],
)
def test_a_window_contains_its_ticks(window: QuietHours, moment: datetime, quiet: bool) -> None:
    assert window.contains(moment) is quiet


@pytest.mark.parametrize(
    ("window", "moment", "end"),
    [
        (NIGHT, utc(2026, 1, 10, 21, 30), utc(2026, 1, 11, 6, 0)),  # before midnight: tomorrow
        (NIGHT, utc(2026, 1, 11, 2, 0), utc(2026, 1, 11, 6, 0)),  # after midnight: today
        (LUNCH, utc(2026, 1, 10, 4, 15), utc(2026, 1, 10, 5, 30)),
        (NIGHT, utc(2026, 1, 10, 12, 0), None),  # not quiet
        (ALWAYS, utc(2026, 1, 10, 12, 0), None),  # never ends
    ],
)
def test_the_window_end_is_where_a_deferred_run_goes(
    window: QuietHours, moment: datetime, end: datetime | None
) -> None:
    assert window.window_end(moment) == end


def test_a_window_ending_in_a_dst_gap_ends_just_after_it() -> None:
    window = QuietHours.model_validate(
        {"start": "23:00", "end": "02:30", "timezone": "America/New_York"}
    )
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that night.
    end = window.window_end(utc(2026, 3, 8, 5, 0))  # 00:00 EST
    assert end == utc(2026, 3, 8, 7, 30)  # 03:30 EDT


def test_a_window_is_declared_per_automate_and_yaml_clock_values_are_read() -> None:
    registry = parse_registry(
        {
            "automates": [
                automate(
                    "a1",
                    # YAML 1.1 reads an unquoted 22:00 as 1320 (sexagesimal minutes).
                    quiet_hours={"start": 1320, "end": "07:00", "action": "defer"},
                )
            ]
        }
    )
    quiet = registry.automates[0].quiet_hours
    assert quiet is not None
    assert (quiet.start, quiet.end, quiet.action) == (time(22), time(7), QuietAction.DEFER)


@pytest.mark.parametrize(
    ("quiet", "field"),
    [
        ({"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}, "quiet_hours.timezone"),
        ({"start": "25:00", "end": "07:00"}, "quiet_hours.start"),
        ({"start": "22:00", "end": "07:00", "action": "later"}, "quiet_hours.action"),
        ({"start": "22:00"}, "quiet_hours.end"),
    ],
)
def test_a_bad_window_names_its_field(quiet: dict[str, object], field: str) -> None:
    with pytest.raises(DeclarationError) as raised:
        parse_registry({"automates": [automate("a1", quiet_hours=quiet)]})
    [problem] = raised.value.problems
    assert (problem.automate, problem.field) == ("a1", field)
