"""A run that ended is never taken for dead: its beats end with an event that follows the last
one, and the automation that crashes unresponsive runs (automates/server/unresponsive.py)
leaves it alone; on a real server, a real worker, Prefect's own trigger evaluation.

Before the layer sent its own beats, Prefect's server evaluated a short run's final state
before (or alongside) its heartbeat, and the automation acted on nearly every short run 90 s
later ("Run is already in terminal state COMPLETED"). That the window closed can only be read
once the server's proactive pass has looked at it: the test sends a lone beat for a run that
does not exist after the real run's beats, and waits for the automation to act on that one; it
looks at windows in the order they end, so by then it has looked at the real run's.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from prefect.events import Event
from prefect.events.clients import get_events_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from automates.platform import components
from automates.server import unresponsive
from automates.server.client import prefect_client
from automates.server.unresponsive import HEARTBEAT_EVENT, HEARTBEATS_ENDED_EVENT
from automates.settings import Settings
from tests.fixtures.projects import Project, script
from tests.fixtures.servers import events_about, layer_settings, run_all, wait_for

# Beats every 5 s here (a 15 s window, not 90 s), for the worker's runs and the automation alike.
HEARTBEAT_SECONDS = 5
# The window, the server's proactive pass (every 5 s), and a loaded machine.
ACTED_WITHIN_SECONDS = unresponsive.unresponsive_after(HEARTBEAT_SECONDS) + 150


async def lone_beat(settings: Settings, run_id: UUID) -> None:
    """A heartbeat of a run whose process 'died' at once: no end follows it."""
    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
        async with get_events_client() as client:
            await client.emit(
                Event.model_validate(
                    {
                        "event": HEARTBEAT_EVENT,
                        "resource": {"prefect.resource.id": f"prefect.flow-run.{run_id}"},
                    }
                )
            )


async def write_automation(settings: Settings, heartbeat_seconds: int) -> None:
    async with prefect_client(settings.api_url) as client:
        await unresponsive.ensure(client, heartbeat_seconds)


@pytest.fixture
def quick_beats(server: Settings, project: Project) -> Iterator[Settings]:
    """A worker whose runs beat every HEARTBEAT_SECONDS, and the automation for it; the
    session server's automation is set back for the tests after this one."""
    pool = f"pool-{os.urandom(3).hex()}"
    settings = layer_settings(
        server, project_root=project.root, work_pool=pool, run_heartbeat_seconds=HEARTBEAT_SECONDS
    )
    components.start_worker(settings, pool)
    try:
        yield project.declare_and_sync(  # sync writes the automation
            server,
            script("quick", ["scripts/audit.sh"], work_pool=pool),
            run_heartbeat_seconds=HEARTBEAT_SECONDS,
        )
    finally:
        components.worker(server, pool).stop()
        asyncio.run(write_automation(server, server.run_heartbeat_seconds))


def test_a_run_that_ended_is_not_taken_for_dead(quick_beats: Settings) -> None:
    settings = quick_beats
    [run] = asyncio.run(run_all(settings, ("script/quick", {})))
    assert run.state is not None and run.state.is_completed(), run.state

    api_url = settings.api_url
    [ended] = wait_for(
        lambda: events_about(api_url, run.id, HEARTBEATS_ENDED_EVENT), 60, "the end of the beats"
    )
    beats = events_about(api_url, run.id, HEARTBEAT_EVENT)
    assert beats and {beat["event"] for beat in beats} == {HEARTBEAT_EVENT, HEARTBEATS_ENDED_EVENT}
    last_beat = [beat for beat in beats if beat["event"] == HEARTBEAT_EVENT][-1]
    assert ended["follows"] == last_beat["id"]
    # Prefect's own beats are off in a guarded run (these replace them): Prefect's first would
    # have been sent as the body started, through the same stream, before the end above.
    assert events_about(api_url, run.id, "prefect.flow-run.heartbeat") == []

    dead = uuid4()
    asyncio.run(lone_beat(settings, dead))
    wait_for(
        lambda: events_about(api_url, dead, "prefect.automation.action."),
        ACTED_WITHIN_SECONDS,
        "the automation to act on the run that stopped beating",
    )
    assert events_about(api_url, run.id, "prefect.automation.") == []
