"""Quiet hours: a daily window, in a timezone, in which an automate does not fire.

The window is [start, end) in local wall time. It may wrap midnight (22:00 → 07:00);
start == end means always quiet. A tick inside the window is either skipped or deferred: all
ticks of one window collapse into one run at the window's end.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict

from automates.fields import Timezone


class QuietAction(StrEnum):
    SKIP = "skip"  # the tick does not run
    DEFER = "defer"  # one run at the end of the window


def _clock(value: object) -> object:
    # YAML reads an unquoted 22:00 as the integer 1320 (sexagesimal minutes).
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    return value


Clock = Annotated[time, BeforeValidator(_clock)]


class QuietHours(BaseModel):
    """The quiet window of one automate."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    start: Clock
    end: Clock
    timezone: Timezone = "UTC"
    action: QuietAction = QuietAction.SKIP

    @property
    def always(self) -> bool:
        return self.start == self.end

    @property
    def label(self) -> str:
        if self.always:
            return f"quiet hours (always, {self.timezone})"
        return f"quiet hours {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"

    def contains(self, moment: datetime) -> bool:
        """True if `moment` (timezone-aware) falls inside the window."""
        if self.always:
            return True
        local = moment.astimezone(ZoneInfo(self.timezone)).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def window_end(self, moment: datetime) -> datetime | None:
        """When the window holding `moment` ends (UTC); None if always quiet or not quiet.

        An end that falls in a DST gap (a local time that does not exist that day) is read
        with the offset before the gap, so it lands just after the gap: 02:30 on the spring
        forward night in New York is 03:30 EDT.
        """
        if self.always or not self.contains(moment):
            return None
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)  # a window wrapping midnight ends tomorrow
        return datetime.combine(day, self.end, tzinfo=zone).astimezone(UTC)
