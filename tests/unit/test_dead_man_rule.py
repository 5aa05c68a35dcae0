"""The dead-man rule: which tick of a schedule is judged, and which run states are a miss."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from automates.scheduling.dead_man import newest_due, why_missed
from automates.scheduling.forms import at_form, cron_form, every_form
from automates.scheduling.realise import prefect_schedule

NOW = datetime(2026, 12, 3, 10, 47, 12, tzinfo=UTC)
NEVER_STARTED = "it never started (does a worker serve pool local?)"


def test_the_newest_due_tick_of_a_frequent_schedule() -> None:
    hourly = prefect_schedule(cron_form("0 * * * *"), "UTC")
    assert newest_due(hourly, NOW - timedelta(days=3), NOW) == NOW.replace(minute=0, second=0)
    every = prefect_schedule(every_form("15m"), "UTC")
    assert newest_due(every, NOW - timedelta(days=1), NOW) == datetime(
        2026, 12, 3, 10, 45, tzinfo=UTC
    )


def test_a_rare_schedule_is_found_by_widening_the_window() -> None:
    # Makassar is UTC+8: 03:00 local on 1 January is 19:00 UTC on 31 December.
    yearly = prefect_schedule(cron_form("0 3 1 1 *"), "Asia/Makassar")
    assert newest_due(yearly, NOW - timedelta(days=800), NOW) == datetime(
        2025, 12, 31, 19, 0, tzinfo=UTC
    )


def test_nothing_is_due_before_the_schedule_existed() -> None:
    hourly = prefect_schedule(cron_form("0 * * * *"), "UTC")
    assert newest_due(hourly, NOW - timedelta(minutes=40), NOW) is None
    one_off = prefect_schedule(at_form("2026-12-03T10:30:00Z"), "UTC")
    assert newest_due(one_off, NOW - timedelta(hours=1), NOW) == datetime(
        2026, 12, 3, 10, 30, tzinfo=UTC
    )
    assert newest_due(one_off, NOW - timedelta(minutes=10), NOW) is None


@pytest.mark.parametrize(
    ("state_type", "state_name", "missed"),
    [
        (None, None, "no flow run exists for it: Prefect's scheduler never created one"),
        ("SCHEDULED", "Late", f"its run is still Late: {NEVER_STARTED}"),
        ("SCHEDULED", "Scheduled", f"its run is still Scheduled: {NEVER_STARTED}"),
        ("PENDING", "Pending", f"its run is still Pending: {NEVER_STARTED}"),
        (
            "CRASHED",
            "Crashed",
            "its run Crashed: the process running it died before it could finish",
        ),
        ("RUNNING", "Running", None),
        ("COMPLETED", "Completed", None),
        ("COMPLETED", "Skipped", None),  # a policy's decision, not a miss
        ("COMPLETED", "Findings", None),
        ("FAILED", "Failed", None),  # the circuit breaker's business
        ("FAILED", "TimedOut", None),
        ("CANCELLED", "Cancelled", None),
        ("PAUSED", "Suspended", None),  # waiting for its approval
    ],
)
def test_which_run_states_are_a_miss(
    state_type: str | None, state_name: str | None, missed: str | None
) -> None:
    assert why_missed(state_type, state_name, "local") == missed
