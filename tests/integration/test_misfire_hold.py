"""A catch-up too old to run: the automate is held for operator review until released, on a
real server with a real worker (the runs of five past ticks made as the scheduler makes them)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from typer.testing import CliRunner

from automates.cli.app import app
from automates.settings import Settings
from automates.sync import sync
from tests.fixtures.misfire import (
    api,
    as_scheduler_makes,
    deployment,
    ended_by,
    forget_holds,
    misfiring,
    worker_held_back,
)
from tests.fixtures.projects import Project
from tests.fixtures.servers import cli_env, raised_alerts, wait_for


def cli(env: dict[str, str], *args: str, code: int = 0) -> Any:
    done = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert done.exit_code == code, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def holds_of(env: dict[str, str], *flags: str) -> list[dict[str, Any]]:
    """`automates holds` of this test's automate: the store is shared with other tests."""
    return [h for h in cli(env, "holds", *flags) if h["automate"] == "stale-sync"]


def held_events(settings: Settings, name: str) -> list[dict[str, Any]]:
    async def read(client: PrefectClient) -> list[dict[str, Any]]:
        response = await client._client.post(
            "/events/filter",
            json={
                "filter": {
                    "event": {"name": ["automates.automate.held"]},
                    "resource": {"id": [f"automates.automate.{name}"]},
                },
                "limit": 50,
            },
        )
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    return api(settings, read)


def test_a_catch_up_too_old_holds_the_automate_until_released(
    server: Settings, project: Project
) -> None:
    pool = f"held-{os.urandom(3).hex()}"
    forget_holds(server, "stale-sync")
    # A yearly schedule: no tick of its own during the test.
    project.declare(misfiring("stale-sync", "catch_up", pool, {"cron": "0 3 1 1 *"}))
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    found = deployment(settings, "stale-sync")
    now = datetime.now(UTC).replace(microsecond=0)
    old = [now - timedelta(hours=h) for h in (30, 29, 28, 27, 26)]  # 5 missed, oldest 30 h
    env = cli_env(settings)
    seen = len(raised_alerts(settings, "stale-sync"))  # the session's store outlives each test

    def ended(known: frozenset[Any] = frozenset()) -> list[FlowRun] | None:
        """The runs of past ticks not in `known`, once they have all ended (a resumed
        schedule adds its next, future, tick)."""
        fresh = [
            r for r in ended_by(settings, found.id, datetime.now(UTC)) or [] if r.id not in known
        ]
        return fresh or None

    with worker_held_back(server, settings, pool) as let_go:
        as_scheduler_makes(settings, found, old)
        let_go()
        runs = wait_for(ended, 180, "the late runs to end")
        assert [r.state_name for r in runs] == ["Held"] * 5
        for run in runs:
            assert run.state is not None
            assert "held for operator review: 5 missed ticks" in (run.state.message or "")

        # One open hold, the schedules paused, one event.
        [hold] = holds_of(env)
        assert (hold["automate"], hold["reason"], hold["released_at"]) == (
            "stale-sync",
            "misfire",
            None,
        )
        assert "oldest 30 h" in hold["detail"]
        assert [s.active for s in deployment(settings, "stale-sync").schedules] == [False]
        [event] = wait_for(lambda: held_events(settings, "stale-sync"), 30, "the held event")
        assert event["payload"]["missed"] == 5 and event["payload"]["hold_id"] == hold["id"]
        journaled = wait_for(lambda: len(cli(env, "logs", "stale-sync")) == 5, 30, "journals")
        assert journaled and {r["outcome"] for r in cli(env, "logs", "stale-sync")} == {"skipped"}
        # One alert for the hold (the held runs are skipped ones: no outcome alert).
        [held] = raised_alerts(settings, "stale-sync")[seen:]
        assert (held["kind"], held["resolved_at"]) == ("held", None)
        assert "5 missed ticks" in held["body"] and "automates release stale-sync" in held["body"]

        # The operator releases it: who and when, schedules resumed.
        released = cli(env, "release", "stale-sync", "--by", "alice")
        assert released["schedules"] == "resumed"
        assert [r["released_by"] for r in released["released"]] == ["alice"]
        assert [s.active for s in deployment(settings, "stale-sync").schedules] == [True]
        assert holds_of(env) == []
        [past] = holds_of(env, "--all")
        assert past["released_by"] == "alice" and past["released_at"] is not None
        held, released_alert = raised_alerts(settings, "stale-sync")[seen:]
        assert held["kind"] == "held" and held["resolved_at"] is not None
        assert released_alert["kind"] == "released"
        assert released_alert["title"] == "stale-sync: resolved, released by alice"

        # A late run of the same outage, started after the release: reviewed, so skipped.
        as_scheduler_makes(settings, found, [now - timedelta(hours=27, minutes=30)])
        [straggler] = wait_for(
            partial(ended, frozenset(r.id for r in runs)), 60, "the straggler to end"
        )
        assert straggler.state is not None and straggler.state_name == "Skipped"
        assert "released by alice" in (straggler.state.message or "")
        assert holds_of(env) == []

    # Nothing to release, or nobody by that name: refused, nothing changed.
    assert "has no open hold" in cli(env, "release", "stale-sync", code=2)["error"]
    assert "no automate named 'nobody'" in cli(env, "release", "nobody", code=2)["error"]
    assert len(holds_of(env, "--all")) == 1
    assert len(held_events(settings, "stale-sync")) == 1
    assert [a["kind"] for a in raised_alerts(settings, "stale-sync")[seen:]] == ["held", "released"]
