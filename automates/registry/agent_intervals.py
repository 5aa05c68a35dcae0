"""The minimum interval applied to the declarations: every schedule of an automate an agent
declared (`origin: agent`) must fire at most as often as AUTOMATES_AGENT_MIN_INTERVAL_SECONDS
allows (the rule: automates/scheduling/min_interval.py)."""

from __future__ import annotations

from collections.abc import Iterable

from automates.errors import DeclarationProblem
from automates.registry.model import Automate
from automates.scheduling.min_interval import too_frequent


def interval_problems(automates: Iterable[Automate], minimum: int) -> list[DeclarationProblem]:
    """One problem per schedule of an agent-declared automate that fires more often than
    `minimum` seconds allows, naming the form field it was declared with."""
    problems = []
    for automate in automates:
        if automate.origin != "agent":
            continue
        for index, schedule in enumerate(automate.schedules):
            message = too_frequent(schedule.form, schedule.became, minimum)
            if message is not None:
                field = next(
                    f for f in ("when", "cron", "every", "at") if getattr(schedule, f) is not None
                )
                problems.append(
                    DeclarationProblem(automate.name, f"schedules[{index}].{field}", message)
                )
    return problems
