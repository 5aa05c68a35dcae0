"""The automation that marks Crashed a run whose process died, read by Prefect's own server-side
trigger model: which events keep a run from being called dead."""

from __future__ import annotations

import pytest
from prefect.server.events.schemas.automations import EventTrigger

from automates.server.unresponsive import automation


@pytest.fixture
def trigger() -> EventTrigger:
    written = automation(30).trigger
    return EventTrigger.model_validate(written.model_dump(mode="json"))


@pytest.mark.parametrize(
    "event",
    [
        "automates.flow-run.heartbeat",
        # The end of a run's beats, sent after its body (automates/guard/heartbeats.py).
        "automates.flow-run.heartbeats-ended",
        # Prefect's own beats close a window (they cannot open one).
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


def test_only_the_layer_s_own_heartbeat_opens_a_window(trigger: EventTrigger) -> None:
    """Prefect's beats open none: nothing could name the last of them as the leader of the
    event that closes the window, so a final state evaluated before it left a window open."""
    assert trigger.after == {"automates.flow-run.heartbeat"}
    assert not trigger.expects("prefect.deployment.created")


def test_the_window_is_three_beats_of_the_configured_interval() -> None:
    written = automation(5)
    assert written.trigger.within.total_seconds() == 15  # type: ignore[union-attr]
    assert "no heartbeat for 15 s" in (written.actions[0].message or "")  # type: ignore[union-attr]
