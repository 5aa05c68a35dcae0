"""Which backups a rotation keeps: the newest of each of the latest days, weeks and months.

A pure rule, as restic's and borg's `--keep-daily/--keep-weekly/--keep-monthly`: walking from
the newest backup to the oldest, each period (a UTC day, an ISO week, a month) seen for the
first time keeps its newest backup, until the count of periods is reached. A period with no
backup does not count, so a layer that was off for a week still keeps seven daily backups. The
caller adds what must never go (the newest backup, the newest one a drill proved).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Retention:
    """How many periods of each length keep a backup."""

    daily: int = 7
    weekly: int = 4
    monthly: int = 12

    def __post_init__(self) -> None:
        if min(self.daily, self.weekly, self.monthly) < 0:
            raise ValueError("a rotation count cannot be negative")


def _day(moment: datetime) -> Hashable:
    return moment.date()


def _week(moment: datetime) -> Hashable:
    iso = moment.isocalendar()
    return (iso.year, iso.week)


def _month(moment: datetime) -> Hashable:
    return (moment.year, moment.month)


def kept(moments: Iterable[datetime], retention: Retention) -> set[datetime]:
    """The moments (backups' start times, timezone-aware) the rotation keeps."""
    newest_first = sorted({m.astimezone(UTC) for m in moments}, reverse=True)
    keep: set[datetime] = set()
    rules: list[tuple[Callable[[datetime], Hashable], int]] = [
        (_day, retention.daily),
        (_week, retention.weekly),
        (_month, retention.monthly),
    ]
    for period, count in rules:
        seen: set[Hashable] = set()
        for moment in newest_first:
            if len(seen) >= count:
                break
            key = period(moment)
            if key not in seen:
                seen.add(key)
                keep.add(moment)
    return keep
