"""The rotation rule over synthetic dates: the newest backup of each of the latest days, ISO
weeks and months is kept, up to each count; periods with no backup do not count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from automates.backups.rotation import Retention, kept

START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)  # a Thursday


def nightly(days: int) -> list[datetime]:
    return [START + timedelta(days=n) for n in range(days)]


def test_a_year_of_nightly_backups_keeps_7_daily_4_weekly_12_monthly() -> None:
    backups = nightly(365)  # 2026-01-01 .. 2026-12-31
    keep = kept(backups, Retention(daily=7, weekly=4, monthly=12))
    newest = backups[-1]
    daily = {newest - timedelta(days=n) for n in range(7)}  # Dec 25..31
    # The newest of each of the last 4 ISO weeks: Thursday 31 (week 53), then Sundays.
    weekly = {newest, datetime(2026, 12, 27, 2, tzinfo=UTC), datetime(2026, 12, 20, 2, tzinfo=UTC)}
    weekly.add(datetime(2026, 12, 13, 2, tzinfo=UTC))
    monthly = {
        (datetime(2026, month + 1, 1, 2, tzinfo=UTC) - timedelta(days=1)) for month in range(1, 12)
    } | {newest}  # the last day of each month
    assert keep == daily | weekly | monthly
    # Dec 31 and Dec 27 are daily and weekly picks, Dec 31 the monthly one too: 7 + 2 + 11.
    assert len(keep) == 20


def test_periods_without_a_backup_do_not_count() -> None:
    # Backups on three days, three weeks apart: a week-long outage does not eat the rotation.
    backups = [START, START + timedelta(days=21), START + timedelta(days=42)]
    assert kept(backups, Retention(daily=7, weekly=0, monthly=0)) == set(backups)


def test_several_backups_a_day_keep_the_newest_of_that_day() -> None:
    day = [START + timedelta(hours=h) for h in range(0, 20, 4)]
    assert kept(day, Retention(daily=1, weekly=0, monthly=0)) == {day[-1]}


def test_zero_everywhere_keeps_nothing_and_empty_keeps_nothing() -> None:
    assert kept(nightly(30), Retention(daily=0, weekly=0, monthly=0)) == set()
    assert kept([], Retention()) == set()


def test_days_are_utc_days_whatever_the_zone_of_the_moment() -> None:
    paris = datetime(2026, 3, 2, 0, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    # 01:30 in Paris, 00:30 UTC on the 2nd
    late = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # the 1st, UTC
    assert kept([paris, late], Retention(daily=2, weekly=0, monthly=0)) == {paris, late}
    assert kept([paris, late], Retention(daily=1, weekly=0, monthly=0)) == {paris}


@pytest.mark.parametrize(
    ("daily", "weekly", "monthly"), [(-1, 0, 0), (0, -1, 0), (0, 0, -1)], ids=["d", "w", "m"]
)
def test_negative_counts_are_refused(daily: int, weekly: int, monthly: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        Retention(daily, weekly, monthly)
