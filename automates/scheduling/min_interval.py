"""The minimum interval of routines that agents create: an agent may not declare a schedule
that fires more often than the setting allows (AUTOMATES_AGENT_MIN_INTERVAL_SECONDS)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from croniter import croniter

from automates.errors import DeclarationProblem
from automates.scheduling.forms import Form, FormKind, format_duration

if TYPE_CHECKING:
    from automates.registry.model import Automate

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


def interval_problems(automates: Iterable[Automate], minimum: int) -> list[DeclarationProblem]:
    """One problem per schedule of an agent-declared automate that fires more often than
    `minimum` seconds allows (jitter moves every tick by the same offset: gaps are unchanged)."""
    problems = []
    for automate in automates:
        if automate.origin != "agent":
            continue
        for index, schedule in enumerate(automate.schedules):
            gap = tightest_gap(schedule.form, minimum)
            if gap is not None and gap < minimum:
                field = next(
                    f for f in ("when", "cron", "every", "at") if getattr(schedule, f) is not None
                )
                problems.append(
                    DeclarationProblem(
                        automate.name,
                        f"schedules[{index}].{field}",
                        f"{schedule.became} fires {format_duration(gap)} apart; a routine an "
                        f"agent declares may fire at most every {format_duration(minimum)} "
                        "(AUTOMATES_AGENT_MIN_INTERVAL_SECONDS)",
                    )
                )
    return problems
