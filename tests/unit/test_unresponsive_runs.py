"""The automation that marks Crashed a run whose process died, read by Prefect's own server-side
trigger model: which events keep a run from being called dead."""

from __future__ import annotations

import pytest
from prefect.server.events.schemas.automations import EventTrigger

from automates.server.unresponsive import automation


@pytest.fixture
def trigger() -> EventTrigger:
    written = automation().trigger
    return EventTrigger.model_validate(written.model_dump(mode="json"))


@pytest.mark.parametrize(
    "event",
    [
        "prefect.flow-run.heartbeat",
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.Cancelled",
        # A run waiting for approval has no process: Suspended is not a death.
        "prefect.flow-run.Suspended",
        "prefect.flow-run.Paused",
        # Nor is a run scheduled again (quiet hours' deferral, a retry).
        "prefect.flow-run.Scheduled",
        "prefect.flow-run.AwaitingRetry",
    ],
)
def test_a_sign_of_life_or_a_state_change_closes_the_window(
    trigger: EventTrigger, event: str
) -> None:
    assert trigger.expects(event)


def test_only_a_running_run_s_heartbeat_opens_a_window(trigger: EventTrigger) -> None:
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    assert not trigger.expects("prefect.deployment.created")
