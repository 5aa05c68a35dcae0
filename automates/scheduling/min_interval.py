"""The minimum interval of routines that agents create: an agent may not declare a schedule
that fires more often than the setting allows (AUTOMATES_AGENT_MIN_INTERVAL_SECONDS). The
declarations it applies to are picked in automates/registry/agent_intervals.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter

from automates.scheduling.forms import Form, FormKind, format_duration

# A cron is sampled over this span (a leap year and a week: every weekday of every month) or
# this many fire times, whichever comes first; a gap below the minimum ends the sampling.
# A cron firing more than 5000 times a year repeats hourly or daily within the sample, and one
# firing less is sampled over the whole span.
SAMPLE_SPAN = timedelta(days=373)
SAMPLE_FIRES = 5_000
SAMPLE_START = datetime(2024, 1, 1)  # a Monday in a leap year


def tightest_gap(form: Form, floor: int) -> int | None:
    """The smallest gap in seconds between two fire times of `form` (None for a one-off).

    For a cron, sampling stops at the first gap below `floor`: it is enough to refuse.
    Gaps are measured on wall-clock times; a DST change can shorten one gap by an hour once
    a year, which the minimum does not try to account for.
    """
    if form.kind is FormKind.AT:
        return None
    if form.kind is FormKind.EVERY:
        return form.every_seconds
    assert form.cron is not None
    fires = croniter(form.cron, SAMPLE_START)
    previous = fires.get_next(datetime)
    tightest: int | None = None
    for _ in range(SAMPLE_FIRES):
        current = fires.get_next(datetime)
        gap = int((current - previous).total_seconds())
        tightest = gap if tightest is None else min(tightest, gap)
        if tightest < floor or current - SAMPLE_START > SAMPLE_SPAN:
            break
        previous = current
    return tightest


def too_frequent(form: Form, became: str, minimum: int) -> str | None:
    """Why a schedule an agent declares fires more often than `minimum` seconds allows (jitter
    moves every tick by the same offset: gaps are unchanged); None if it does not. `became` is
    how the schedule reads to the operator."""
    gap = tightest_gap(form, minimum)
    if gap is None or gap >= minimum:
        return None
    return (
        f"{became} fires {format_duration(gap)} apart; a routine an "
        f"agent declares may fire at most every {format_duration(minimum)} "
        "(AUTOMATES_AGENT_MIN_INTERVAL_SECONDS)"
    )
