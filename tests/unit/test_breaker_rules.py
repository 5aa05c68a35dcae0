"""The circuit breaker's transitions, as a pure rule (automates/scheduling/breaker.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from automates.scheduling.breaker import (
    Breaker,
    Transition,
    after_run,
    due_for_probe,
    on_probe,
    reset,
)
from automates.states import BreakerState, RunOutcome

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(hours=2)
CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def run(breaker: Breaker, outcome: RunOutcome, threshold: int = 3) -> Breaker:
    return after_run(breaker, outcome, threshold=threshold, cooldown_seconds=60, now=NOW)


def opened(failures: int = 3, **fields: object) -> Breaker:
    return Breaker.model_validate(
        {"automate": "a", "state": OPEN, "consecutive_failures": failures, "opened_at": EARLIER}
        | fields
    )


def test_failures_below_the_threshold_are_counted_and_keep_it_closed() -> None:
    after = run(Breaker(automate="a", consecutive_failures=1), RunOutcome.FAILED)
    assert (after.state, after.consecutive_failures, after.opened_at) == (CLOSED, 2, None)
    assert after.cooldown_seconds == 60  # the policy's, written with the change


@pytest.mark.parametrize("outcome", [RunOutcome.FAILED, RunOutcome.TIMED_OUT, RunOutcome.CRASHED])
def test_the_threshold_opens_it_now(outcome: RunOutcome) -> None:
    before = Breaker(automate="a", consecutive_failures=2)
    after = run(before, outcome)
    assert (after.state, after.consecutive_failures, after.opened_at) == (OPEN, 3, NOW)
    transition = Transition.between(before, after)
    assert transition.tripped and transition.opened and not transition.closed


@pytest.mark.parametrize("outcome", [RunOutcome.COMPLETED, RunOutcome.FINDINGS])
def test_a_success_closes_and_forgets_the_count(outcome: RunOutcome) -> None:
    before = opened(probe_started_at=None)
    after = run(before, outcome)
    assert (after.state, after.consecutive_failures, after.opened_at) == (CLOSED, 0, None)
    assert Transition.between(before, after).closed


@pytest.mark.parametrize("outcome", [RunOutcome.SKIPPED, RunOutcome.CANCELLED])
def test_skipped_and_cancelled_runs_count_for_nothing(outcome: RunOutcome) -> None:
    for before in (Breaker(automate="a", consecutive_failures=2), opened(), probing()):
        assert run(before, outcome) is before


def test_a_success_on_a_clean_breaker_changes_nothing() -> None:
    before = Breaker(automate="a", cooldown_seconds=10)
    assert run(before, RunOutcome.COMPLETED) is before  # nor its cool-down


def test_a_failure_while_open_is_counted_without_reopening() -> None:
    after = run(opened(failures=10), RunOutcome.FAILED)
    assert (after.state, after.consecutive_failures, after.opened_at) == (OPEN, 11, EARLIER)
    assert not Transition.between(opened(), after).opened


def probing() -> Breaker:
    return opened(state=HALF_OPEN, probe_started_at=EARLIER)


def test_a_failed_probe_reopens_at_once_whatever_the_threshold() -> None:
    after = run(probing(), RunOutcome.FAILED, threshold=100)
    assert (after.state, after.opened_at, after.probe_started_at) == (OPEN, NOW, None)
    transition = Transition.between(probing(), after)
    assert transition.opened and not transition.tripped  # told as a probe failure


def test_a_successful_probe_closes() -> None:
    after = run(probing(), RunOutcome.COMPLETED)
    assert (after.state, after.opened_at, after.probe_started_at) == (CLOSED, None, None)


def test_a_probe_is_due_after_the_cool_down_only() -> None:
    open_ = opened(cooldown_seconds=3600)
    assert not due_for_probe(open_, EARLIER + timedelta(seconds=3599))
    assert due_for_probe(open_, EARLIER + timedelta(seconds=3600))
    assert not due_for_probe(Breaker(automate="a"), NOW)
    # Half-open: counted from the probe's start, not the opening.
    started = opened(state=HALF_OPEN, probe_started_at=NOW, cooldown_seconds=60)
    assert not due_for_probe(started, NOW + timedelta(seconds=59))
    assert due_for_probe(started, NOW + timedelta(seconds=60))


def test_the_probe_turns_an_open_breaker_half_open() -> None:
    after = on_probe(opened(), NOW)
    assert (after.state, after.opened_at, after.probe_started_at) == (HALF_OPEN, EARLIER, NOW)
    assert after.consecutive_failures == 3


def test_a_probe_that_never_reported_back_reopens_for_another_cool_down() -> None:
    after = on_probe(probing(), NOW)
    assert (after.state, after.opened_at, after.probe_started_at) == (OPEN, NOW, None)


def test_a_closed_breaker_is_never_probed() -> None:
    with pytest.raises(ValueError, match="is closed"):
        on_probe(Breaker(automate="a"), NOW)


def test_an_operator_reset_closes_and_forgets() -> None:
    after = reset(probing())
    assert after == Breaker(automate="a", cooldown_seconds=probing().cooldown_seconds)


def test_a_breaker_is_open_exactly_when_it_has_an_opening_time() -> None:
    with pytest.raises(ValidationError, match="opened_at"):
        Breaker(automate="a", state=OPEN)
    with pytest.raises(ValidationError, match="opened_at"):
        Breaker(automate="a", opened_at=NOW)
    with pytest.raises(ValidationError):
        Breaker(automate="a", consecutive_failures=-1)


def test_a_replayed_run_is_no_transition() -> None:
    replayed = Transition("a", CLOSED, CLOSED, 0, replayed=True)
    assert not (replayed.opened or replayed.closed or replayed.tripped)
