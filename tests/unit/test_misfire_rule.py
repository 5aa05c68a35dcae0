"""The misfire rule under a controlled clock: which missed ticks run, which are skipped, when
catch_up holds, and which outage a tick was missed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from automates.scheduling.misfire import (
    Fate,
    Misfire,
    MissedTick,
    decide,
    outage_around,
)

RECOVERY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # the first run start after the outage
HOUR = timedelta(hours=1)


def ago(delta: timedelta) -> MissedTick:
    return MissedTick(at=RECOVERY - delta)


def hourly(count: int, oldest: timedelta) -> list[MissedTick]:
    """`count` ticks an hour apart, the oldest `oldest` before the recovery."""
    return [ago(oldest - n * HOUR) for n in range(count)]


def fates(policy: Misfire, ticks: list[MissedTick]) -> list[str]:
    """Each tick's fate, oldest first (the input order does not matter)."""
    decision = decide(policy, reversed(ticks), RECOVERY)
    assert [r.tick for r in decision.rulings] == sorted(ticks, key=lambda t: t.at)
    return [r.fate.value for r in decision.rulings]


R, S, H = "run", "skip", "hold"


@pytest.mark.parametrize(
    ("policy", "ticks", "expected"),
    [
        # skip: nothing missed runs, however many
        (Misfire.SKIP, hourly(1, HOUR), [S]),
        (Misfire.SKIP, hourly(5, 5 * HOUR), [S] * 5),
        (Misfire.SKIP, hourly(5, 48 * HOUR), [S] * 5),  # old: still no hold
        # fire_once: one run, the newest
        (Misfire.FIRE_ONCE, hourly(1, HOUR), [R]),
        (Misfire.FIRE_ONCE, hourly(4, 4 * HOUR), [S, S, S, R]),
        (Misfire.FIRE_ONCE, hourly(6, 30 * HOUR), [S] * 5 + [R]),  # old: no hold either
        # catch_up: up to 3 all run, whatever their age
        (Misfire.CATCH_UP, hourly(1, HOUR), [R]),
        (Misfire.CATCH_UP, hourly(3, 3 * HOUR), [R, R, R]),
        (Misfire.CATCH_UP, hourly(3, 72 * HOUR), [R, R, R]),  # exactly 3, oldest 3 days
        # more than 3 within 24 h: the 3 most recent run, the older are skipped
        (Misfire.CATCH_UP, hourly(4, 4 * HOUR), [S, R, R, R]),
        (Misfire.CATCH_UP, hourly(7, 7 * HOUR), [S] * 4 + [R] * 3),
        # the 24 h boundary: strictly over 24 h holds
        (Misfire.CATCH_UP, hourly(4, 23 * HOUR + timedelta(minutes=59)), [S, R, R, R]),
        (Misfire.CATCH_UP, hourly(4, 24 * HOUR), [S, R, R, R]),
        (Misfire.CATCH_UP, hourly(4, 24 * HOUR + timedelta(seconds=1)), [H] * 4),
        (Misfire.CATCH_UP, hourly(4, 24 * HOUR + timedelta(minutes=1)), [H] * 4),
        (Misfire.CATCH_UP, hourly(30, 30 * HOUR), [H] * 30),
    ],
)
def test_each_policy_rules_on_every_missed_tick(
    policy: Misfire, ticks: list[MissedTick], expected: list[str]
) -> None:
    assert fates(policy, ticks) == expected


@pytest.mark.parametrize(
    ("policy", "ticks", "hold", "run"),
    [
        (Misfire.CATCH_UP, hourly(4, 24 * HOUR + timedelta(minutes=1)), True, 0),
        (Misfire.CATCH_UP, hourly(4, 23 * HOUR + timedelta(minutes=59)), False, 3),
        (Misfire.CATCH_UP, hourly(2, 2 * HOUR), False, 2),
        (Misfire.FIRE_ONCE, hourly(9, 40 * HOUR), False, 1),
        (Misfire.SKIP, hourly(9, 40 * HOUR), False, 0),
    ],
)
def test_only_catch_up_holds(
    policy: Misfire, ticks: list[MissedTick], hold: bool, run: int
) -> None:
    decision = decide(policy, ticks, RECOVERY)
    assert decision.hold is hold
    assert len(decision.to_run) == run


@pytest.mark.parametrize("policy", list(Misfire))
def test_nothing_missed_decides_nothing(policy: Misfire) -> None:
    decision = decide(policy, [], RECOVERY)
    assert (decision.rulings, decision.hold, decision.to_run) == ((), False, ())


def test_catch_up_runs_the_three_most_recent_oldest_first() -> None:
    ticks = hourly(5, 5 * HOUR)
    decision = decide(Misfire.CATCH_UP, ticks, RECOVERY)
    assert decision.to_run == tuple(ticks[-3:])
    assert decision.summary == (
        "5 missed ticks from 2026-03-10 07:00:00 UTC to 2026-03-10 11:00:00 UTC: the 3 most "
        "recent run, oldest first; 2 older skipped"
    )
    skipped = decision.ruling(ticks[0])
    assert skipped is not None and skipped.fate is Fate.SKIP
    assert skipped.reason == "more than 3 missed: only the 3 most recent run"


def test_a_hold_says_how_old_the_oldest_was_at_the_recovery() -> None:
    decision = decide(Misfire.CATCH_UP, hourly(4, 26 * HOUR + timedelta(minutes=5)), RECOVERY)
    assert decision.summary.endswith(
        "more than 3 missed and the oldest 26 h 05 min before the recovery at "
        "2026-03-10 12:00:00 UTC (over 24 h): none runs, held for operator review"
    )


def test_the_age_is_measured_at_the_recovery_not_when_asked() -> None:
    # The same outage judged later gives the same answer: no clock is read.
    ticks = hourly(4, 20 * HOUR)
    assert decide(Misfire.CATCH_UP, ticks, RECOVERY) == decide(Misfire.CATCH_UP, ticks, RECOVERY)
    assert not decide(Misfire.CATCH_UP, ticks, RECOVERY).hold
    assert decide(Misfire.CATCH_UP, ticks, RECOVERY + 5 * HOUR).hold  # a later recovery


def test_duplicate_ticks_count_once_and_schedules_stay_apart() -> None:
    tick = ago(HOUR)
    other = MissedTick(at=tick.at, schedule="noon")
    decision = decide(Misfire.CATCH_UP, [tick, tick, other], RECOVERY)
    assert [r.tick for r in decision.rulings] == [tick, other]


def test_a_tick_must_carry_its_timezone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        MissedTick(at=datetime(2026, 3, 10, 12, 0))
    paris = datetime.fromisoformat("2026-03-10T13:00:00+01:00")
    assert MissedTick(at=paris).at == RECOVERY


T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
SEC = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("starts", "overdue", "last_start", "recovered_at"),
    [
        # runs started at 9:00 and 9:10, nothing until 9:40: an outage from 9:10 to 9:40
        ([T0, T0 + 600 * SEC, T0 + 2400 * SEC, T0 + 2401 * SEC], T0 + 900 * SEC, 600, 2400),
        # every overdue moment inside the same gap gets the same bounds
        ([T0, T0 + 600 * SEC, T0 + 2400 * SEC, T0 + 2401 * SEC], T0 + 2399 * SEC, 600, 2400),
        ([T0 + 2401 * SEC, T0 + 2400 * SEC, T0 + 600 * SEC, T0], T0 + 601 * SEC, 600, 2400),
        # a start exactly when the tick fell due is before the outage
        ([T0, T0 + 600 * SEC, T0 + 2400 * SEC], T0 + 600 * SEC, 600, 2400),
        # nothing ever started before: the outage has no beginning
        ([T0 + 2400 * SEC], T0 + 60 * SEC, None, 2400),
    ],
)
def test_the_outage_of_a_tick_is_the_gap_between_run_starts(
    starts: list[datetime],
    overdue: datetime,
    last_start: int | None,
    recovered_at: int,
) -> None:
    outage = outage_around(overdue, starts)
    assert outage.last_start == (None if last_start is None else T0 + last_start * SEC)
    assert outage.recovered_at == T0 + recovered_at * SEC


def test_nothing_has_recovered_without_a_later_start() -> None:
    with pytest.raises(ValueError, match="nothing has recovered"):
        outage_around(T0 + HOUR, [T0])


@pytest.mark.parametrize(
    ("tick", "missed"),
    [
        # last start 9:10:00, recovery 9:40:00, grace 60 s: a tick falls due 60 s after it
        (T0 + 539 * SEC, False),  # due 9:09:59, before the last start: not this outage
        (T0 + 541 * SEC, True),  # due 9:10:01: inside
        (T0 + 2339 * SEC, True),  # due 9:39:59
        (T0 + 2340 * SEC, False),  # due 9:40:00, the recovery: it starts on time
        (T0 + 2400 * SEC, False),
    ],
)
def test_a_tick_is_missed_when_it_fell_due_inside_the_outage(tick: datetime, missed: bool) -> None:
    outage = outage_around(T0 + 900 * SEC, [T0 + 600 * SEC, T0 + 2400 * SEC])
    grace = timedelta(seconds=60)
    assert outage.missed(tick, grace) is missed
