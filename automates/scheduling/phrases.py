"""Natural phrases ("every weekday at 9", "twice daily at 9 and 18") translated into a form.

A small fixed grammar rather than a general date parser: every phrase it accepts has exactly
one meaning, and the form it became is echoed back to the operator. A phrase it does not read
fails with a suggestion: the phrase with its misspelt words corrected when that parses, else
the list of phrases it knows.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from automates.scheduling.forms import Form, at_form, cron_form, every_form

EXAMPLES = (
    "every 15 minutes",
    "every 2 hours",
    "every hour",
    "hourly at :30",
    "daily at 18:30",
    "every weekday at 9",
    "every weekend at 10:00",
    "every monday at 04:00",
    "every monday and thursday at 9am",
    "twice daily at 9 and 18",
    "first day of each month",
    "first day of each month at 06:00",
    "in 2 hours",
)

_DAYS = {
    "sunday": 0,
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
}
_DAY_ALIASES = {**_DAYS, **{d[:3]: n for d, n in _DAYS.items()}, "tues": 2, "thurs": 4}
_DAY = r"(?:" + "|".join(sorted(_DAY_ALIASES, key=len, reverse=True)) + r")s?"
_TIME = r"(?:noon|midnight|\d{1,2}(?::\d{2})?\s*(?:am|pm)?)"
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_UNIT = r"(?P<unit>second|minute|hour|day|week)s?"
_VOCABULARY = sorted(
    {
        "every",
        "each",
        "in",
        "at",
        "on",
        "the",
        "of",
        "and",
        "a",
        "per",
        "day",
        "days",
        "daily",
        "hour",
        "hours",
        "hourly",
        "minute",
        "minutes",
        "second",
        "seconds",
        "week",
        "weeks",
        "weekly",
        "weekday",
        "weekdays",
        "weekend",
        "weekends",
        "month",
        "monthly",
        "first",
        "twice",
        "three",
        "times",
        "noon",
        "midnight",
        "am",
        "pm",
        "past",
        *_DAYS,
        *(f"{d}s" for d in _DAYS),
    }
)


class Phrase(BaseModel):
    """What a phrase became: a form, and whether it is relative to the moment it was read."""

    model_config = ConfigDict(frozen=True)

    phrase: str
    form: Form
    relative: bool = False


class PhraseError(ValueError):
    """A phrase the grammar does not read; the message carries a suggestion."""


def parse_phrase(phrase: str, now: datetime | None = None) -> Phrase:
    """Translate `phrase`; relative phrases ("in 2 hours") are resolved against `now`."""
    text = _normalise(phrase)
    result = _translate(text, now or datetime.now(UTC))
    if result is not None:
        form, relative = result
        return Phrase(phrase=phrase, form=form, relative=relative)
    raise PhraseError(f"cannot read {phrase!r} as a schedule; {suggestion(text)}")


def suggestion(text: str) -> str:
    corrected = " ".join(_corrected(word) for word in text.split())
    if corrected != text and _translate(corrected, datetime.now(UTC)) is not None:
        return f"did you mean {corrected!r}?"
    shown = ", ".join(repr(e) for e in EXAMPLES)
    return f"write one of the known phrases, e.g. {shown}, or give cron, every or at instead"


def _corrected(word: str) -> str:
    if re.fullmatch(_TIME + r"|:\d{2}|\d+|,", word) or word in _VOCABULARY:
        return word
    close = difflib.get_close_matches(word, _VOCABULARY, n=1, cutoff=0.7)
    return close[0] if close else word


def _normalise(phrase: str) -> str:
    text = phrase.strip().lower()
    text = re.sub(r"\s*,\s*", " , ", text)
    return re.sub(r"\s+", " ", text).strip()


def _time(text: str) -> tuple[int, int]:
    """'9' → (9, 0), '18:30' → (18, 30), '6pm' → (18, 0), 'noon' → (12, 0)."""
    text = text.replace(" ", "")
    if text == "noon":
        return 12, 0
    if text == "midnight":
        return 0, 0
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?(am|pm)?", text)
    assert match is not None
    hour, minute, meridiem = int(match[1]), int(match[2] or 0), match[3]
    if meridiem:
        if not 1 <= hour <= 12:
            raise PhraseError(f"{text!r}: an am/pm hour is between 1 and 12")
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    if hour > 23 or minute > 59:
        raise PhraseError(f"{text!r} is not a time of day (00:00 to 23:59)")
    return hour, minute


def _at(match: re.Match[str]) -> tuple[int, int]:
    return _time(match["time"]) if match["time"] else (0, 0)


def _days(text: str) -> str:
    days = sorted(
        {
            _DAY_ALIASES[d.rstrip("s") if d.rstrip("s") in _DAY_ALIASES else d]
            for d in re.findall(_DAY, text)
        }
    )
    return ",".join(str(d) for d in days)


_AT = rf"(?: at (?P<time>{_TIME}))?"
Rule = Callable[[re.Match[str], datetime], tuple[Form, bool]]


def _every_n(match: re.Match[str], now: datetime) -> tuple[Form, bool]:
    amount = int(match["n"] or 1)
    seconds = amount * _UNIT_SECONDS[match["unit"]]
    unit = match["unit"]
    # Clock-aligned when the step divides the hour (or the day): readable and DST-proof.
    if unit == "minute" and 60 % amount == 0:
        return cron_form("* * * * *" if amount == 1 else f"*/{amount} * * * *"), False
    if unit == "hour" and 24 % amount == 0:
        return cron_form("0 * * * *" if amount == 1 else f"0 */{amount} * * *"), False
    if unit == "day" and amount == 1:
        return cron_form("0 0 * * *"), False
    if unit == "week" and amount == 1:
        return cron_form("0 0 * * 1"), False
    return every_form(seconds), False


def _in(match: re.Match[str], now: datetime) -> tuple[Form, bool]:
    delta = timedelta(seconds=int(match["n"]) * _UNIT_SECONDS[match["unit"]])
    return at_form(now.astimezone(UTC).replace(microsecond=0) + delta), True


def _daily(match: re.Match[str], now: datetime) -> tuple[Form, bool]:
    hour, minute = _at(match)
    return cron_form(f"{minute} {hour} * * *"), False


def _weekdays(match: re.Match[str], now: datetime) -> tuple[Form, bool]:
    hour, minute = _at(match)
    return cron_form(f"{minute} {hour} * * 1-5"), False


def _weekends(match: re.Match[str], now: datetime) -> tuple[Form, bool]:
    hour, minute = _at(match)
    return cron_form(f"{minute} {hour} * * 0,6"), False


def _named_days(match: re.Match[str], now: datetime) -> tuple[Form, bool]:
    hour, minute = _at(match)
    return cron_form(f"{minute} {hour} * * {_days(match['days'])}"), False


def _times_daily(match: re.Match[str], now: datetime) -> tuple[Form, bool]:
    times = [_time(t) for t in re.findall(_TIME, match["times"])]
    expected = {"twice": 2, "three times": 3}.get(match["count"] or "", len(times))
    if len(times) != expected:
        raise PhraseError(f"{match[0]!r} names {len(times)} times of day, not {expected}")
    minutes = {m for _, m in times}
    if len(minutes) != 1:
        raise PhraseError(
            f"{match[0]!r}: one cron needs the same minute at every hour; "
            "declare one schedule per time instead"
        )
    hours = ",".join(str(h) for h in sorted({h for h, _ in times}))
    return cron_form(f"{minutes.pop()} {hours} * * *"), False


def _monthly(match: re.Match[str], now: datetime) -> tuple[Form, bool]:
    hour, minute = _at(match)
    return cron_form(f"{minute} {hour} 1 * *"), False


def _hourly(match: re.Match[str], now: datetime) -> tuple[Form, bool]:
    minute = int(match["minute"] or 0)
    if minute > 59:
        raise PhraseError(f"{match[0]!r}: minute {minute} is not 0 to 59")
    return cron_form(f"{minute} * * * *"), False


_TIMES = rf"(?P<times>{_TIME}(?: ?(?:,|and|, and) {_TIME})+)"
_RULES: tuple[tuple[re.Pattern[str], Rule], ...] = tuple(
    (re.compile(pattern), rule)
    for pattern, rule in (
        (rf"^in (?P<n>\d+) {_UNIT}$", _in),
        (
            r"^(?:hourly|every hour|each hour)"
            r"(?: at (?::|minute )?(?P<minute>\d{1,2})(?: past)?)?$",
            _hourly,
        ),
        (rf"^(?:every|each) (?:(?P<n>\d+) )?{_UNIT}$", _every_n),
        (
            rf"^(?:(?P<count>twice|three times) )?(?:daily|a day|per day|every day) at {_TIMES}$",
            _times_daily,
        ),
        (rf"^(?:daily|every day|each day){_AT}$", _daily),
        (rf"^(?:(?:every|on|each) )?weekdays?{_AT}$", _weekdays),
        (rf"^(?:(?:every|on|each) )?weekends?{_AT}$", _weekends),
        (
            rf"^(?:every|on|each|weekly on) (?P<days>{_DAY}(?: ?(?:,|and|, and) {_DAY})*){_AT}$",
            _named_days,
        ),
        (rf"^(?:(?:on )?(?:the )?first day of (?:each|every|the) month|monthly){_AT}$", _monthly),
    )
)


def _translate(text: str, now: datetime) -> tuple[Form, bool] | None:
    for pattern, rule in _RULES:
        match = pattern.match(text)
        if match is not None:
            return rule(match, now)
    return None
