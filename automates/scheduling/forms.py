"""The three schedule forms a declaration resolves to: cron, `every` (an interval) and `at`
(a one-off time). Natural phrases (phrases.py) translate into one of them.

A `Form` is what the rest of the layer works with: realise.py maps it to a Prefect schedule,
preview.py computes its fire times, min_interval.py measures its tightest gap.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from croniter import croniter
from pydantic import BaseModel, ConfigDict

_DURATION_PART = re.compile(r"(?P<amount>\d+)\s*(?P<unit>[a-z]+)")
_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}


class FormKind(StrEnum):
    CRON = "cron"
    EVERY = "every"
    AT = "at"


class Form(BaseModel):
    """One resolved schedule form; exactly the field of its kind is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FormKind
    cron: str | None = None
    every_seconds: int | None = None
    at: datetime | None = None  # always timezone-aware, in UTC

    @property
    def text(self) -> str:
        """The form as an operator would write it in a declaration."""
        if self.kind is FormKind.CRON:
            return f"cron '{self.cron}'"
        if self.kind is FormKind.EVERY:
            assert self.every_seconds is not None
            return f"every '{format_duration(self.every_seconds)}'"
        assert self.at is not None
        return f"at '{self.at.isoformat().replace('+00:00', 'Z')}'"

    @property
    def expression(self) -> str:
        """A one-line canonical text of the form (what the store's schedule row records)."""
        return self.cron if self.kind is FormKind.CRON else self.text  # type: ignore[return-value]


def cron_form(value: str) -> Form:
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"{value!r} is not a 5-field cron expression (minute hour day month dow)")
    if not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a valid cron expression")
    return Form(kind=FormKind.CRON, cron=" ".join(fields))


def parse_duration(value: str) -> int:
    """'15m', '2h', '1h30m', '90s', '1d', '15 minutes' → seconds."""
    text = value.strip().lower().replace(",", " ")
    parts = list(_DURATION_PART.finditer(text))
    leftover = _DURATION_PART.sub("", text).replace("and", "").strip()
    if not parts or leftover:
        raise ValueError(
            f"{value!r} is not a duration (write e.g. '15m', '2h', '1h30m', '90s' or '1d')"
        )
    total = 0
    for part in parts:
        unit = part["unit"]
        if unit not in _UNITS:
            raise ValueError(f"{value!r}: unknown unit {unit!r} (use s, m, h, d or w)")
        total += int(part["amount"]) * _UNITS[unit]
    if total <= 0:
        raise ValueError(f"{value!r} is not a positive duration")
    return total


def every_form(value: str | int) -> Form:
    seconds = value if isinstance(value, int) else parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a positive duration")
    return Form(kind=FormKind.EVERY, every_seconds=seconds)


def at_form(value: str | datetime) -> Form:
    """An RFC 3339 time with an explicit offset ('2026-12-01T09:00:00+08:00' or '...Z')."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an RFC 3339 time (e.g. '2026-12-01T09:00:00+08:00')"
            ) from None
    else:
        moment = value
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{value!r} has no UTC offset: write it with one (e.g. '...T09:00:00+08:00' or 'Z')"
        )
    return Form(kind=FormKind.AT, at=moment.astimezone(UTC))


def format_duration(seconds: int) -> str:
    """900 → '15m', 5400 → '1h30m', 86400 → '1d'."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def as_timedelta(form: Form) -> timedelta:
    assert form.every_seconds is not None
    return timedelta(seconds=form.every_seconds)
