"""An operator's pause, through the CLI on a real server and store: the schedules pause and stay
paused through sync and reconcile (no drift), recorded with who and why; resume brings them
back; bad requests change nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from automates.server.client import prefect_client
from automates.settings import Settings
from tests.fixtures.commands import invoke, invoke_json
from tests.fixtures.misfire import events_named
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, store_rows, wait_for

NIGHTLY = "hello/nightly"


def schedules_active(settings: Settings) -> list[bool]:
    async def read() -> list[bool]:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name(NIGHTLY)
        return [s.active for s in deployment.schedules]

    return asyncio.run(read())


def ours(settings: Settings, event: str) -> list[dict[str, Any]]:
    """The stored events named `event` about the automate `nightly`."""
    return [
        e
        for e in events_named(settings, event)
        if e["resource"]["prefect.resource.id"] == "automates.automate.nightly"
    ]


def test_a_paused_automate_stays_paused_until_resumed(server: Settings, project: Project) -> None:
    store_rows(server, "DELETE FROM automates.holds WHERE automate = 'nightly' RETURNING id")
    two = [
        {"slug": "early", "cron": "0 3 * * *", "timezone": "UTC"},
        {"slug": "late", "cron": "0 23 * * *", "timezone": "UTC"},
    ]
    settings = project.declare_and_sync(server, automate("nightly", schedules=two))
    env = cli_env(settings)
    assert schedules_active(settings) == [True, True]

    paused = invoke_json(env, "pause", "nightly", "--reason", "disk migration", "--by", "ana")
    assert paused == {
        "automate": "nightly",
        "paused_by": "ana",
        "reason": "disk migration",
        "schedules": "paused",
    }
    assert schedules_active(settings) == [False, False]
    # Who and why, in the server's Event Feed too (beside the paused schedules in the UI).
    [event] = wait_for(lambda: ours(settings, "automates.automate.paused"), 60, "the event")
    assert event["payload"] == {"by": "ana", "reason": "disk migration"}

    def holds(*flags: str) -> list[dict[str, object]]:
        # The session's store outlives each test: other automates' holds may be open.
        return [h for h in invoke_json(env, "holds", *flags) if h["automate"] == "nightly"]

    [hold] = holds()
    assert (hold["reason"], hold["held_by"], hold["detail"]) == ("paused", "ana", "disk migration")

    # Refused, nothing changed: a second pause, an unknown name, `release` (not a review hold).
    again = invoke(env, "pause", "nightly", code=2)
    assert "already paused by ana" in again.stdout + again.stderr
    unknown = invoke(env, "pause", "nowhere", code=2)
    assert "no deployed automate named 'nowhere'" in unknown.stdout + unknown.stderr
    release = invoke(env, "release", "nightly", code=2)
    assert "is paused, not held for review: `automates resume nightly`" in release.stderr
    assert len(holds()) == 1

    # Sync and reconcile keep it paused: not drift.
    invoke_json(env, "sync")
    assert schedules_active(settings) == [False, False]
    reconciled = invoke_json(env, "reconcile")
    assert reconciled["drifts"] == [], reconciled

    resumed = invoke_json(env, "resume", "nightly", "--by", "ben")
    assert (resumed["resumed_by"], resumed["schedules"]) == ("ben", "resumed")
    assert schedules_active(settings) == [True, True]
    assert holds() == []
    [event] = wait_for(lambda: ours(settings, "automates.automate.resumed"), 60, "the event")
    assert event["payload"] == {"by": "ben", "schedules": "resumed"}
    [past] = holds("--all")
    assert (past["released_by"], past["held_by"]) == ("ben", "ana")
    not_paused = invoke(env, "resume", "nightly", code=2)
    assert "is not paused" in not_paused.stdout + not_paused.stderr
