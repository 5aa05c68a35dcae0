"""The guard's misfire pre-check on Prefect `FlowRun` data: which runs are misfires at all, and
the `skip` policy, which needs no API call. The other policies read the outage from a real
server (tests/integration/test_misfire.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.states import Completed, State

from automates.guard.misfire import MisfireCheck, from_schedule, schedule_of
from automates.guard.quiet_hours import DEFERRED_TAG
from automates.guard.recording import outcome_of
from automates.registry.policy import GuardPolicy
from automates.scheduling.misfire import Misfire
from tests.fixtures.orchestrator import guard_policy, run_context


def misfire_refusal(policy: GuardPolicy, flow_run: FlowRun) -> State | None:
    return MisfireCheck().check(run_context(policy, flow_run))


TICK = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DEPLOYMENT = uuid4()
SCHEDULE = uuid4()
SCHEDULER_KEY = f"scheduled {DEPLOYMENT} {SCHEDULE} 2026-03-10 09:00:00+00:00"


def policy(misfire: Misfire = Misfire.SKIP, grace: int = 60) -> GuardPolicy:
    return guard_policy(misfire=misfire, misfire_grace_seconds=grace)


def run(late: float, **fields: Any) -> FlowRun:
    """A run of TICK that first started `late` seconds after it; from the scheduler unless
    `fields` say otherwise."""
    data: dict[str, Any] = {
        "flow_id": uuid4(),
        "deployment_id": DEPLOYMENT,
        "expected_start_time": TICK,
        "start_time": TICK + timedelta(seconds=late),
        "auto_scheduled": True,
        "idempotency_key": SCHEDULER_KEY,
        "tags": ["auto-scheduled"],
    }
    data.update(fields)
    return FlowRun.model_validate(data)


@pytest.mark.parametrize(
    ("flow_run", "why"),
    [
        (run(60), "within the grace"),
        (run(-8), "started early (a prefetching worker)"),
        (run(3600, auto_scheduled=False, idempotency_key=None, tags=[]), "a manual run"),
        (run(3600, auto_scheduled=False, idempotency_key=None, tags=[DEFERRED_TAG]), "deferred"),
        (run(3600, tags=["misfire:catch-up"]), "created by a catch-up"),
        (run(3600, tags=["misfire:fire-once"]), "created by a fire_once"),
        (run(3600, expected_start_time=None), "no tick"),
    ],
)
@pytest.mark.parametrize("misfire", list(Misfire))
def test_runs_that_are_not_misfires_go_through(
    flow_run: FlowRun, why: str, misfire: Misfire
) -> None:
    assert misfire_refusal(policy(misfire), flow_run) is None, why


def test_a_suspended_run_is_judged_by_its_first_start_not_its_resumption() -> None:
    # Resumed an hour later after an approval wait: start_time is still its first start.
    resumed = run(5)
    assert resumed.start_time is not None
    assert datetime.now(UTC) - resumed.start_time > timedelta(hours=1)
    assert misfire_refusal(policy(Misfire.CATCH_UP), resumed) is None


def test_a_run_not_started_yet_is_judged_by_now() -> None:
    # No start recorded in the context: the check runs as the run starts, so now is its start.
    assert misfire_refusal(policy(), run(0, start_time=None)) is not None


def test_skip_ends_a_late_run_skipped_with_a_readable_state() -> None:
    state = misfire_refusal(policy(Misfire.SKIP, grace=60), run(61))
    assert state is not None and state.is_completed() and state.name == "Skipped"
    assert state.message == (
        "skipped: missed tick 2026-03-10 09:00:00 UTC (misfire policy skip, started 61 s after "
        "it, grace 60 s; 1 missed tick (2026-03-10 09:00:00 UTC): none runs; the schedule "
        "resumes at its next tick)"
    )
    assert outcome_of(state) == "skipped"


def test_the_scheduler_key_alone_marks_a_run_from_a_schedule() -> None:
    assert from_schedule(run(0, auto_scheduled=False))
    assert not from_schedule(run(0, auto_scheduled=False, idempotency_key="manual"))
    assert from_schedule(run(0, idempotency_key=None))


def test_the_schedule_of_a_run_comes_from_its_key() -> None:
    assert schedule_of(run(0)) == str(SCHEDULE)
    ours = f"misfire {DEPLOYMENT} {SCHEDULE} 2026-03-10T09:00:00+00:00"
    assert schedule_of(run(0, idempotency_key=ours)) == str(SCHEDULE)
    assert schedule_of(run(0, idempotency_key=None)) == ""


def test_a_held_run_is_journaled_as_skipped() -> None:
    assert outcome_of(Completed(name="Held")) == "skipped"


def test_the_policy_carries_misfire_only_when_not_the_default() -> None:
    assert "misfire" not in policy().encoded()
    encoded = policy(Misfire.FIRE_ONCE, grace=5).encoded()
    round_trip = GuardPolicy.model_validate_json(encoded)
    assert (round_trip.misfire, round_trip.misfire_grace_seconds) == (Misfire.FIRE_ONCE, 5)
