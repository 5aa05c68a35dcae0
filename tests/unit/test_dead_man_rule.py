"""The dead-man rule: which ticks of a schedule a check judges, and which run states are a
miss."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from automates.scheduling.dead_man import (
    LOOK_BACK,
    MAX_COUNTED,
    MAX_JUDGED,
    Due,
    Miss,
    Missed,
    describe,
    due_ticks,
    judge,
    why_missed,
)
from automates.scheduling.forms import at_form, cron_form, every_form
from automates.scheduling.realise import prefect_schedule

NOW = datetime(2026, 12, 3, 10, 47, 12, tzinfo=UTC)
HOUR = NOW.replace(minute=0, second=0)  # the newest hourly tick
NEVER_STARTED = "it never started (does a worker serve pool local?)"
NO_RUN = "no flow run exists for it: Prefect's scheduler never created one"
HOURLY = prefect_schedule(cron_form("0 * * * *"), "UTC")


def hours(*back: int) -> tuple[datetime, ...]:
    return tuple(HOUR - timedelta(hours=h) for h in back)


def test_the_ticks_due_since_the_previous_check_are_each_judged() -> None:
    # The check was down for three hours: its last completed run judged up to 07:50.
    judged = NOW - timedelta(hours=2, minutes=57)
    due = due_ticks(HOURLY, since=NOW - timedelta(days=30), until=NOW, judged_until=judged)
    assert due == Due(ticks=hours(2, 1, 0))
    # A check 15 minutes later judges only what fell due since: nothing, then the next tick.
    assert due_ticks(HOURLY, since=NOW - timedelta(days=30), until=NOW, judged_until=NOW) == Due(
        ticks=()
    )
    later = due_ticks(
        HOURLY, since=NOW - timedelta(days=30), until=NOW + timedelta(hours=1), judged_until=NOW
    )
    assert later == Due(ticks=(HOUR + timedelta(hours=1),))


def test_ranges_are_half_open_so_consecutive_checks_neither_overlap_nor_leave_a_gap() -> None:
    since = NOW - timedelta(days=30)
    # A tick exactly at the watermark was not judged by the previous check ([.., watermark)).
    assert due_ticks(HOURLY, since=since, until=NOW, judged_until=HOUR).ticks == hours(0)
    # A tick exactly at this check's end is left to the next one.
    assert due_ticks(HOURLY, since=since, until=HOUR, judged_until=HOUR).ticks == ()
    every = prefect_schedule(every_form("15m"), "UTC")
    made = NOW - timedelta(hours=5)
    middle = NOW - timedelta(minutes=45)
    first = due_ticks(every, since=made, until=middle, judged_until=made)
    second = due_ticks(every, since=made, until=NOW, judged_until=middle)
    both = due_ticks(every, since=made, until=NOW, judged_until=made)
    assert first.ticks + second.ticks == both.ticks
    assert len(both.ticks) == 20
    assert len(second.ticks) == 3


def test_nothing_is_due_before_the_schedule_last_changed() -> None:
    # Resumed by the breaker 40 minutes ago, after a check two hours ago.
    due = due_ticks(
        HOURLY,
        since=NOW - timedelta(minutes=40),
        until=NOW,
        judged_until=NOW - timedelta(hours=2),
    )
    assert due == Due(ticks=())
    one_off = prefect_schedule(at_form("2026-12-03T10:30:00Z"), "UTC")
    made = NOW - timedelta(hours=1)
    assert due_ticks(one_off, since=made, until=NOW, judged_until=None).ticks == (
        datetime(2026, 12, 3, 10, 30, tzinfo=UTC),
    )
    assert due_ticks(one_off, since=made, until=NOW, judged_until=NOW).ticks == ()


def test_a_check_down_longer_than_the_look_back_counts_the_older_ticks() -> None:
    judged = NOW - LOOK_BACK - timedelta(days=3)
    due = due_ticks(HOURLY, since=NOW - timedelta(days=365), until=NOW, judged_until=judged)
    assert len(due.ticks) == LOOK_BACK // timedelta(hours=1)
    assert due.ticks[0] >= NOW - LOOK_BACK and due.ticks[-1] == HOUR
    assert due.unjudged == 3 * 24
    # Never more than MAX_JUDGED ticks judged: the newest; the others counted.
    minutely = prefect_schedule(cron_form("* * * * *"), "UTC")
    day = due_ticks(
        minutely, since=NOW - timedelta(days=365), until=NOW, judged_until=NOW - timedelta(days=1)
    )
    assert len(day.ticks) == MAX_JUDGED and day.ticks[-1] == NOW.replace(second=0)
    assert day.unjudged == 24 * 60 - MAX_JUDGED
    # Too many to count: at least MAX_COUNTED.
    seconds = prefect_schedule(every_form("1s"), "UTC")
    hour = NOW - timedelta(hours=3)
    flood = due_ticks(seconds, since=NOW - timedelta(days=365), until=NOW, judged_until=hour)
    assert len(flood.ticks) == MAX_JUDGED and flood.ticks[-1] == NOW - timedelta(seconds=1)
    assert flood.unjudged == MAX_COUNTED


def test_without_a_previous_check_the_look_back_bounds_the_first_one() -> None:
    # Its first run (or its history deleted): no outage of its own to count.
    due = due_ticks(HOURLY, since=NOW - timedelta(days=365), until=NOW, judged_until=None)
    assert len(due.ticks) == LOOK_BACK // timedelta(hours=1) and due.unjudged == 0
    # Makassar is UTC+8: 03:00 local on 1 January is 19:00 UTC on 31 December.
    yearly = prefect_schedule(cron_form("0 3 1 1 *"), "Asia/Makassar")
    assert due_ticks(yearly, since=NOW - timedelta(days=800), until=NOW, judged_until=None) == Due(
        ticks=()
    )
    new_year = datetime(2027, 1, 1, 12, tzinfo=UTC)
    assert due_ticks(
        yearly, since=NOW - timedelta(days=800), until=new_year, judged_until=NOW
    ) == Due(ticks=(datetime(2026, 12, 31, 19, 0, tzinfo=UTC),))
    # Down for two years: both earlier New Years are counted, not judged.
    assert due_ticks(
        yearly, since=NOW - timedelta(days=800), until=NOW, judged_until=NOW - timedelta(days=800)
    ) == Due(ticks=(), unjudged=2)


@pytest.mark.parametrize(
    ("state_type", "state_name", "missed"),
    [
        (None, None, NO_RUN),
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


def test_a_tick_is_missed_only_when_none_of_its_runs_started() -> None:
    assert judge(HOUR, [], "local") == Miss(tick=HOUR, state=None, reason=NO_RUN)
    late = Miss(tick=HOUR, state="Late", reason=f"its run is still Late: {NEVER_STARTED}")
    assert judge(HOUR, [("SCHEDULED", "Late")], "local") == late
    # Ran late, within its misfire rules (Skipped by the guard, or run): not missed.
    assert judge(HOUR, [("CRASHED", "Crashed"), ("COMPLETED", "Skipped")], "local") is None


def test_one_line_per_schedule_lists_its_missed_ticks() -> None:
    crashed = "its run Crashed: the process running it died before it could finish"
    missed = Missed(
        automate="nightly",
        schedule="hourly",
        misses=(
            Miss(tick=hours(2)[0], state=None, reason=NO_RUN),
            Miss(tick=hours(1)[0], state="Crashed", reason=crashed),
            Miss(tick=hours(0)[0], state=None, reason=NO_RUN),
        ),
        unjudged=12,
    )
    assert describe(missed) == (
        "nightly (hourly) missed 3 ticks: 2026-12-03 08:00:00 UTC, 2026-12-03 10:00:00 UTC "
        f"({NO_RUN}); 2026-12-03 09:00:00 UTC ({crashed}); and 12 earlier ticks not judged"
    )
    assert missed.newest.tick == HOUR
