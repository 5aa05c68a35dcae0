"""The guard's quiet-hours pre-check, judged on the run's scheduled time."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from prefect.client.schemas.objects import FlowRun, State

from automates.guard.quiet_hours import OVERRIDE_TAG, QuietHoursCheck
from automates.guard.recording import outcome_of
from automates.registry.policy import GuardPolicy
from automates.scheduling.quiet_hours import QuietHours
from tests.fixtures.orchestrator import guard_policy, run_context

NIGHT = QuietHours.model_validate(
    {"start": "22:00", "end": "07:00", "timezone": "Asia/Makassar", "action": "skip"}
)
IN_THE_NIGHT = datetime(2026, 1, 10, 16, 0, tzinfo=UTC)  # 00:00 WITA
AT_NOON = datetime(2026, 1, 10, 4, 0, tzinfo=UTC)  # 12:00 WITA


def policy(quiet: QuietHours | None) -> GuardPolicy:
    return guard_policy(quiet_hours=quiet)


def quiet_refusal(policy: GuardPolicy, flow_run: FlowRun) -> State | None:
    return QuietHoursCheck().check(run_context(policy, flow_run))


def flow_run(at: datetime, tags: list[str] | None = None, deployment: bool = True) -> FlowRun:
    return FlowRun.model_validate(
        {
            "flow_id": uuid4(),
            "deployment_id": uuid4() if deployment else None,
            "expected_start_time": at,
            "tags": tags or [],
        }
    )


def test_no_window_or_outside_it_lets_the_run_through() -> None:
    assert quiet_refusal(policy(None), flow_run(IN_THE_NIGHT)) is None
    assert quiet_refusal(policy(NIGHT), flow_run(AT_NOON)) is None


def test_a_tick_in_the_window_is_skipped_with_a_readable_state() -> None:
    state = quiet_refusal(policy(NIGHT), flow_run(IN_THE_NIGHT))
    assert state is not None and state.is_completed() and state.name == "Skipped"
    assert state.message == (
        "skipped: tick 2026-01-10 16:00:00 UTC is in quiet hours 22:00-07:00 Asia/Makassar"
    )
    assert outcome_of(state) == "skipped"


def test_an_operator_override_tag_lets_the_run_through() -> None:
    assert quiet_refusal(policy(NIGHT), flow_run(IN_THE_NIGHT, tags=[OVERRIDE_TAG])) is None


def test_a_defer_that_cannot_happen_skips_and_says_why() -> None:
    always = QuietHours.model_validate({"start": "00:00", "end": "00:00", "action": "defer"})
    state = quiet_refusal(policy(always), flow_run(AT_NOON))
    assert state is not None and state.name == "Skipped"
    assert "defer impossible: always quiet" in (state.message or "")
    night = NIGHT.model_copy(update={"action": "defer"})
    state = quiet_refusal(policy(night), flow_run(IN_THE_NIGHT, deployment=False))
    assert state is not None and "defer impossible: not a deployment run" in (state.message or "")


def test_the_policy_carries_the_window_only_when_declared() -> None:
    assert "quiet_hours" not in policy(None).encoded()  # existing job variables unchanged
    round_trip = GuardPolicy.model_validate_json(policy(NIGHT).encoded())
    assert round_trip.quiet_hours == NIGHT
