"""Triggers beyond time on a real Prefect server and worker: `automates trigger`, and the
deployment triggers sync writes, run by Prefect's own triggers service."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.events import Event
from prefect.events.schemas.events import Resource

from automates.reconcile import reconcile
from automates.registry.model import MANAGED_TAG
from automates.server.client import prefect_client
from automates.server.triggers import read_deployed_triggers
from automates.settings import Settings
from automates.sync import sync
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, runs_of, wait_for
from tests.integration.test_approval import cli


@pytest.fixture
def forget_triggers(server: Settings) -> Iterator[None]:
    """The server fixture deletes deployments, not their automations: delete ours after."""
    yield

    async def delete() -> None:
        async with prefect_client(server.api_url) as client:
            for automation in await client.read_automations():
                if MANAGED_TAG in automation.tags:
                    await client.delete_automation(automation.id)

    asyncio.run(delete())


def finished(settings: Settings, full_name: str, **parameters: Any) -> FlowRun | None:
    """A run of the deployment that ended, with these parameters if given."""
    for run in runs_of(settings, full_name):
        wanted = all(run.parameters.get(k) == v for k, v in parameters.items())
        if wanted and run.state is not None and run.state.is_final():
            return run
    return None


def emit(settings: Settings, name: str, resource_id: str) -> None:
    event = Event(event=name, resource=Resource({"prefect.resource.id": resource_id}))
    response = httpx.post(f"{settings.api_url}/events", json=[event.model_dump(mode="json")])
    assert response.status_code == 204, response.text


def triggers_of(settings: Settings) -> dict[Any, Any]:
    async def go() -> dict[Any, Any]:
        async with prefect_client(settings.api_url) as client:
            return await read_deployed_triggers(client)

    return asyncio.run(go())


def test_manual_after_and_event_triggers_start_runs(
    server: Settings, project: Project, worker: str, forget_triggers: None
) -> None:
    ping = f"test.ping.{os.urandom(3).hex()}"
    on_ping = {"event": "test.automates.ping", "match": {"prefect.resource.id": ping}}
    always_quiet = {"start": "00:00", "end": "00:00", "action": "skip"}
    one_off: dict[str, Any] = {"kind": "oneshot", "schedules": [], "work_pool": worker}
    project.declare(
        automate("first", quiet_hours=always_quiet, **one_off),
        automate("then", triggers=[{"after": "first"}], **one_off),
        automate("pinged", triggers=[{**on_ping, "parameters": {"greeting": "pong"}}], **one_off),
    )
    settings = project.settings(server)
    env = cli_env(settings)
    created = asyncio.run(sync(settings, settings.database_url or ""))
    assert len(created.created) == 3 and len(triggers_of(settings)) == 2

    # Written once, read back equal: a second sync changes nothing (reconcile: at the end).
    again = asyncio.run(sync(settings, settings.database_url or ""))
    assert again.updated == {} and len(again.unchanged) == 3

    # `automates trigger` checks parameters first: a refusal names them and starts nothing.
    error = cli(env, "trigger", "first", "--param", "nope=1", "--param", "greeting=", code=2)
    assert "parameter 'nope': no such parameter (the flow takes: greeting)" in error["error"]
    assert cli(env, "trigger", "undeclared", code=2)["error"].startswith("no automate named")
    assert runs_of(settings, "hello/first") == []

    # A manual run overrides the quiet hours; its completion starts `then` (after: first).
    started = cli(env, "trigger", "first", "--param", "greeting=hey", "--override-quiet-hours")
    assert started["parameters"] == {"greeting": "hey"}
    assert "quiet-hours:override" in started["tags"]
    done = wait_for(lambda: finished(settings, "hello/first"), 60, "the manual run")
    assert (str(done.id), done.state_name) == (started["flow_run_id"], "Completed")
    follower = wait_for(lambda: finished(settings, "hello/then"), 60, "the after-trigger's run")
    assert follower.state_name == "Completed"

    # An event matching the trigger's labels starts a run with the trigger's parameters.
    emit(settings, "test.automates.ping", "test.ping.someone-else")
    emit(settings, "test.automates.ping", ping)
    pinged = wait_for(lambda: finished(settings, "hello/pinged"), 60, "the event-trigger's run")
    assert (pinged.state_name, pinged.parameters) == ("Completed", {"greeting": "pong"})
    assert len(runs_of(settings, "hello/pinged")) == 1

    # Removing a trigger from the declaration removes its automation at the next sync; the
    # trigger left is read back as declared, so reconcile sees no drift.
    project.declare(
        automate("first", quiet_hours=always_quiet, **one_off),
        automate("then", triggers=[{"after": "first"}], **one_off),
        automate("pinged", **one_off),
    )
    changed = asyncio.run(sync(settings, settings.database_url or ""))
    assert changed.updated == {"hello/pinged": ["triggers"]}
    assert len(triggers_of(settings)) == 1
    assert not asyncio.run(reconcile(settings)).has_drift
