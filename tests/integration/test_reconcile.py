"""Reconcile finds each kind of drift, created for real on a real server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from prefect.client.schemas.actions import DeploymentUpdate

from automates.reconcile import DriftKind, ReconcileReport, reconcile
from automates.server.client import prefect_client
from automates.server.deployed import read_server_state
from automates.settings import Settings
from automates.sync import sync
from tests.conftest import REPO, shipped_registry
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, layer_settings


def run(settings: Settings) -> ReconcileReport:
    return asyncio.run(reconcile(settings))


def kinds(report: ReconcileReport) -> set[tuple[str, str]]:
    return {(d.kind.value, d.subject) for d in report.drifts}


def test_the_shipped_registry_has_no_drift_after_sync(server: Settings) -> None:
    settings = layer_settings(server, project_root=REPO)
    asyncio.run(sync(settings, settings.database_url or ""))
    report = run(settings)
    assert report.drifts == []
    registry = shipped_registry()
    declared, deployable = len(registry.automates), len(registry.deployable)
    assert (report.declared, report.deployed, report.importable) == (declared, deployable, declared)


def test_each_injected_drift_is_named(server: Settings, project: Project) -> None:
    synced = [
        automate("loses-file", entrypoint="flows/goodbye.py:say_goodbye"),
        automate("gets-paused"),
        automate("limit-changed", concurrency_limit=1),
        automate("tz-changed"),
        automate(
            "half-active",
            schedules=[{"slug": "a", "cron": "0 1 * * *"}, {"slug": "b", "cron": "0 2 * * *"}],
        ),
    ]
    project.declare(*synced)
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    assert run(settings).drifts == []

    project.declare(  # declared after the sync: never deployed
        *synced,
        automate("never-synced", kind="oneshot", schedules=[]),
        automate("not-importable", entrypoint="flows/broken.py:broken"),
        automate("not-a-flow", entrypoint="flows/hello.py:missing_function"),
    )
    (project.root / "flows" / "broken.py").write_text(
        "import module_that_is_not_installed\nfrom prefect import flow\n\n"
        "@flow\ndef broken():\n    pass\n"
    )
    (project.root / "flows" / "goodbye.py").unlink()
    asyncio.run(_drift_the_server(settings))

    report = run(settings)
    assert kinds(report) == {
        ("broken", "loses-file"),
        ("broken", "not-importable"),
        ("orphan", "gets-paused"),
        ("orphan", "not-importable"),  # declared recurring, never deployed
        ("mismatch", "limit-changed"),
        ("mismatch", "tz-changed"),
        ("undeployed", "never-synced"),
        ("broken", "not-a-flow"),
        ("orphan", "not-a-flow"),
        ("mismatch", "half-active"),
        ("ghost", "hand-made/stray"),
    }
    by_subject = {(d.kind, d.subject): d for d in report.drifts}
    limit = by_subject[(DriftKind.MISMATCH, "limit-changed")]
    # forbid (the default) is the guard's slot: a Prefect limit added by hand is drift.
    assert (limit.field, limit.declared, limit.deployed) == ("concurrency_limit", None, 5)
    tz = by_subject[(DriftKind.MISMATCH, "tz-changed")]
    assert tz.field == "schedules"
    assert tz.declared == ["daily: 0 3 * * * Asia/Makassar"]
    assert tz.deployed == ["daily: 0 3 * * * Europe/Paris"]
    assert "ModuleNotFoundError" in by_subject[(DriftKind.BROKEN, "not-importable")].detail
    assert "does not exist" in by_subject[(DriftKind.BROKEN, "loses-file")].detail
    assert (
        "defines no function missing_function()"
        in by_subject[(DriftKind.BROKEN, "not-a-flow")].detail
    )
    half = by_subject[(DriftKind.MISMATCH, "half-active")]
    assert (
        half.detail == "schedule activity differs from the declaration: b (inactive on the server)"
    )
    # The file-less automate's deployment is still claimed: it is broken, not a ghost.
    assert ("ghost", "say-goodbye/loses-file") not in kinds(report)


async def _drift_the_server(settings: Settings) -> None:
    from prefect.client.schemas.actions import DeploymentScheduleUpdate
    from prefect.client.schemas.schedules import CronSchedule

    async with prefect_client(settings.api_url) as client:
        state = await read_server_state(client)
        paused = state.deployments["hello/gets-paused"]
        for schedule in paused.response.schedules:
            await client.update_deployment_schedule(paused.id, schedule.id, active=False)
        half = state.deployments["hello/half-active"]
        second = next(s for s in half.response.schedules if s.slug == "b")
        await client.update_deployment_schedule(half.id, second.id, active=False)
        limited = state.deployments["hello/limit-changed"]
        await client.update_deployment(limited.id, DeploymentUpdate(concurrency_limit=5))
        moved = state.deployments["hello/tz-changed"]
        await client.update_deployment(
            moved.id,
            DeploymentUpdate(
                schedules=[
                    DeploymentScheduleUpdate(
                        schedule=CronSchedule(cron="0 3 * * *", timezone="Europe/Paris"),
                        slug="daily",
                        active=True,
                    )
                ]
            ),
        )
        flow_id = await client.create_flow_from_name("hand-made")
        await client.create_deployment(flow_id=flow_id, name="stray")


def test_the_cli_exits_1_on_drift_and_prints_json(server: Settings, project: Project) -> None:
    project.declare(automate("declared-only"))
    settings = project.settings(server)
    env = cli_env(settings)
    cli = [sys.executable, "-m", "automates.cli", "reconcile"]
    found = subprocess.run([*cli, "--json"], env=env, capture_output=True, text=True, check=False)
    assert found.returncode == 1, found.stderr
    document = json.loads(found.stdout)
    assert document["counts"]["orphan"] == 1
    assert document["drifts"][0]["subject"] == "declared-only"

    table = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
    assert table.returncode == 1
    assert "orphan" in table.stdout and "declared-only" in table.stdout

    asyncio.run(sync(settings, settings.database_url or ""))
    clean = subprocess.run(cli, env=env, capture_output=True, text=True, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no drift" in clean.stdout
