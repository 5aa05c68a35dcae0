"""Alerts the way an operator sets them up: a routes file, `automates sync`, real runs on a real
server and worker, the deliverer process `automates up` starts, a local sink as the receiver."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from automates.server.client import prefect_client
from automates.settings import Settings
from automates.store.engine import make_engine
from tests.conftest import REPO
from tests.fixtures.projects import Project, automate
from tests.fixtures.receivers import HttpSink
from tests.fixtures.servers import cli_env, run_all, wait_for

TOKEN = "e2eS3cretPath"


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "automates.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def script(name: str, command: list[str], pool: str, **fields: Any) -> dict[str, Any]:
    return automate(
        name,
        kind="oneshot",
        schedules=None,
        entrypoint=None,
        command=command,
        work_pool=pool,
        family=fields.pop("family", "exports"),
        **fields,
    )


def on_path(sink: HttpSink, prefix: str, count: int) -> list[Any] | None:
    """The sink's requests under `prefix`, once there are at least `count`."""
    found = [r for r in sink.requests if r.path.startswith(prefix)]
    return found if len(found) >= count else None


def sent_alert_events(settings: Settings, count: int) -> list[dict[str, Any]] | None:
    """The server's `automates.alert.sent` events, once there are at least `count`."""
    found = httpx.post(
        f"{settings.api_url}/events/filter",
        json={"filter": {"event": {"name": ["automates.alert.sent"]}}, "limit": 50},
        timeout=30,
    )
    found.raise_for_status()
    events: list[dict[str, Any]] = found.json()["events"]
    return events if len(events) >= count else None


def alert_rows(settings: Settings) -> list[dict[str, Any]]:
    engine = make_engine(settings.database_url or "")
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT a.kind, a.automate, a.flow_run_id, d.route, d.status, d.reason "
                "FROM automates.alert_deliveries d JOIN automates.alerts a ON a.id = d.alert_id "
                "ORDER BY d.id"
            )
        )
        found = [dict(row._mapping) for row in rows]
    engine.dispose()
    return found


@pytest.fixture
def clean_alerts(server: Settings) -> Settings:
    engine = make_engine(server.database_url or "")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM automates.alerts"))
        connection.execute(text("DELETE FROM automates.alert_routing"))
    engine.dispose()
    return server


def test_run_outcomes_reach_the_declared_route_with_the_run_link(
    clean_alerts: Settings, project: Project, worker: str, http_sink: HttpSink
) -> None:
    project.declare(
        script("exporter", ["scripts/broken.sh"], worker),
        script("auditor", ["scripts/audit.sh"], worker, family="audits"),
        script("greeter", ["scripts/greet.sh"], worker),
    )
    project.declare_routes(
        {
            "routes": [{"name": "ops", "channel": "webhook", "url": {"env": "E2E_OPS_HOOK"}}],
            "alerts": {"default": ["ops"]},
        }
    )
    settings = project.settings(clean_alerts)
    env = {**cli_env(settings), "E2E_OPS_HOOK": f"{http_sink.base_url}/ops/{TOKEN}"}
    synced = run_cli(env, "sync", "--json")
    assert synced.returncode == 0, synced.stderr
    assert TOKEN not in synced.stdout + synced.stderr

    deliverer = subprocess.Popen(
        [sys.executable, "-m", "automates.alerts"],
        env={
            **env,
            "PREFECT_API_URL": settings.api_url,
            # The same process pings the outbound heartbeat.
            "AUTOMATES_HEARTBEAT_URL": f"{http_sink.base_url}/ping/{TOKEN}",
            "AUTOMATES_HEARTBEAT_INTERVAL_SECONDS": "5",
        },
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        runs = asyncio.run(
            run_all(
                settings,
                ("script/exporter", {}),
                ("script/auditor", {}),
                ("script/greeter", {}),
            )
        )
        assert [r.state_name for r in runs] == ["Failed", "Findings", "Completed"]
        received = wait_for(lambda: on_path(http_sink, "/ops/", 2), 120, "two outcome alerts")
        pings = wait_for(lambda: on_path(http_sink, "/ping/", 1), 120, "a heartbeat ping")
        wait_for(lambda: len(alert_rows(settings)) >= 3, 60, "three deliveries recorded")
    finally:
        deliverer.terminate()
        _, stderr = deliverer.communicate(timeout=60)
    assert TOKEN not in stderr

    bodies = {r.json()["automate"]: r.json() for r in received}
    assert set(bodies) == {"exporter", "auditor"}
    exporter_run, auditor_run = runs[0].id, runs[1].id
    assert bodies["exporter"]["kind"] == "run_failed"
    assert bodies["exporter"]["run_url"] == f"{settings.ui_url}/runs/flow-run/{exporter_run}"
    assert f"/runs/flow-run/{exporter_run}" in bodies["exporter"]["message"]
    assert bodies["auditor"]["kind"] == "run_findings"
    assert bodies["auditor"]["run_url"].endswith(str(auditor_run))
    assert all(r.path.startswith(f"/ops/{TOKEN}") for r in received)
    greeter = [row for row in alert_rows(settings) if row["automate"] == "greeter"]
    assert [(g["status"], g["reason"]) for g in greeter] == [
        ("suppressed", "delivery mode failure_only: run_completed is not delivered")
    ]

    # Each delivery is in the UI's event feed, about its automate.
    sent_events = wait_for(lambda: sent_alert_events(settings, 2), 90, "two alert events")
    related = {r["prefect.resource.id"] for e in sent_events for r in e["related"]}
    assert {"automates.automate.exporter", "automates.automate.auditor"} <= related

    listed = run_cli(env, "alerts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {(d["automate"], d["status"]) for d in json.loads(listed.stdout)} == {
        ("exporter", "sent"),
        ("auditor", "sent"),
        ("greeter", "suppressed"),
    }
    assert TOKEN not in listed.stdout

    tested = run_cli(env, "alerts", "test", "ops", "--json")
    assert tested.returncode == 0, tested.stderr
    outcome = json.loads(tested.stdout)
    assert (outcome["route"], outcome["channel"], outcome["sent"]) == ("ops", "webhook", True)
    tests = (on_path(http_sink, "/ops/", 3) or [])[2:]
    assert "test of route ops" in tests[0].json()["title"]
    # The heartbeat saw the server answer, and the settings' own pool with no worker: /fail.
    assert pings[0].path.startswith(f"/ping/{TOKEN}")
    if pings[0].method == "POST":
        assert pings[0].path.endswith("/fail") and b"work pool 'test-local'" in pings[0].body


def test_a_bad_route_is_refused_at_validate_and_sync_and_nothing_is_synced(
    clean_alerts: Settings, project: Project, http_sink: HttpSink
) -> None:
    project.declare(automate("kept"))
    settings = project.settings(clean_alerts)
    env = cli_env(settings)
    assert run_cli(env, "sync", "--json").returncode == 0

    project.declare(automate("kept"), automate("added", delivery={"routes": ["pager"]}))
    project.declare_routes(
        {
            "routes": [
                {"name": "unset", "channel": "slack", "url": {"env": "E2E_UNSET_HOOK"}},
                {"name": "wrong", "channel": "discord", "url": {"env": "E2E_WRONG_HOOK"}},
                {"name": "missing", "channel": "webhook", "url": {"secret": "no-such-block"}},
            ]
        }
    )
    env = {
        **env,
        "E2E_WRONG_HOOK": f"https://hooks.slack.com/services/T0/B0/{TOKEN}",
    }
    env.pop("E2E_UNSET_HOOK", None)
    for command in ("validate", "sync"):
        done = run_cli(env, command, "--json")
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        problems = {
            (p.get("thing", "automate"), p["automate"], p["field"])
            for p in json.loads(done.stdout)["problems"]
        }
        expected = {
            ("automate", "added", "delivery.routes"),
            ("route", "unset", "url"),
            ("route", "wrong", "url"),
        }
        if command == "sync":  # a Secret block is read from the API: sync checks it
            expected.add(("route", "missing", "url"))
        assert problems == expected, (command, problems)
        assert TOKEN not in done.stdout + done.stderr

    async def deployments() -> list[str]:
        async with prefect_client(settings.api_url) as client:
            return sorted(d.name for d in await client.read_deployments())

    assert asyncio.run(deployments()) == ["kept"]
    engine = make_engine(settings.database_url or "")
    with engine.connect() as connection:
        routing = connection.execute(text("SELECT config FROM automates.alert_routing")).scalar()
    engine.dispose()
    assert routing is not None and routing["routes"] == []  # the previous sync's, unchanged


def test_a_route_secret_in_a_prefect_secret_block(
    clean_alerts: Settings, project: Project, http_sink: HttpSink
) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from pydantic import SecretStr

    settings = project.settings(clean_alerts)
    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
        url = SecretStr(f"{http_sink.base_url}/vault/{TOKEN}")
        Secret(value=url).save("e2e-hook-url", overwrite=True)
    project.declare(automate("kept"))
    project.declare_routes(
        {"routes": [{"name": "vaulted", "channel": "webhook", "url": {"secret": "e2e-hook-url"}}]}
    )
    env = cli_env(settings)
    synced = run_cli(env, "sync", "--json")  # reads the block to check the route
    assert synced.returncode == 0, synced.stdout + synced.stderr
    tested = run_cli(env, "alerts", "test", "vaulted", "--json")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert json.loads(tested.stdout)["sent"] is True
    [request] = http_sink.wait_for(1)
    assert request.path == f"/vault/{TOKEN}"
    assert TOKEN not in synced.stdout + tested.stdout + tested.stderr
