"""The built-in automates do their real work, run by a real worker from their deployments."""

from __future__ import annotations

import asyncio
from typing import Any

from automates.server.client import prefect_client
from automates.settings import Settings
from automates.store.engine import head_revision
from automates.store.schema import metadata
from automates.sync import sync
from tests.conftest import REPO, shipped_registry
from tests.fixtures.servers import layer_settings, raised_alerts, store_rows
from tests.fixtures.shipped_runs import artifact, run


def test_builtin_automates_run_through_the_worker(server: Settings, repo_worker: str) -> None:
    settings = layer_settings(server, project_root=REPO, work_pool=repo_worker)
    asyncio.run(sync(settings, settings.database_url or ""))

    flow_run, message = run(settings, "registry-reconcile/registry-reconcile")
    assert flow_run.state_name == "Completed", flow_run.state
    registry = shipped_registry()
    declared, deployable = len(registry.automates), len(registry.deployable)
    assert (
        message == f"{declared} declared, {deployable} deployed, {declared} importable, 0 drift(s)"
    )
    assert "No drift" in artifact(settings, "registry-reconcile", flow_run)

    flow_run, message = run(settings, "store-maintenance/store-maintenance", deep=True)
    assert flow_run.state_name == "Completed", flow_run.state
    count = len(metadata.sorted_tables)
    assert message.startswith(f"vacuumed and analyzed {count} tables; schema at {head_revision()}")
    sizes = artifact(settings, "store-maintenance", flow_run)
    assert f"| automates | {declared} |" in sizes and "| crash_journal |" in sizes

    flow_run, message = run(settings, "disk-space-check/disk-space-check")
    assert flow_run.state_name == "Completed", flow_run.state
    flow_run, message = run(settings, "disk-space-check/disk-space-check", min_free_percent=100)
    assert flow_run.state_name == "Findings"
    assert flow_run.state is not None and flow_run.state.is_completed()
    assert "% free (< 100" in message
    assert "## Findings" in artifact(settings, "disk-space-check", flow_run)

    flow_run, message = run(settings, "registry-report/registry-report")
    assert flow_run.state_name == "Completed", flow_run.state
    report = artifact(settings, "registry-report", flow_run)
    assert "## audits" in report and "registry-reconcile" in report

    flow_run, message = run(settings, "flow-run-retention/flow-run-retention", keep_days=1)
    assert flow_run.state_name == "Completed", flow_run.state
    assert message.startswith("deleted 0 finished runs")  # every run here is younger than a day

    # A journal row past its retention (90 days) goes; a dry run only counts it.
    old = store_rows(
        settings,
        "INSERT INTO automates.execution_journal (automate, flow_run_id, started_at, finished_at,"
        " duration_seconds, outcome, attempts) VALUES ('nightly', gen_random_uuid(),"
        " now() - interval '100 days', now() - interval '100 days', 1, 'completed', 1)"
        " RETURNING id",
    )
    flow_run, message = run(settings, "store-retention/store-retention", dry_run=True)
    assert flow_run.state_name == "Completed", flow_run.state
    assert message.startswith("1 rows would go past their retention"), message
    flow_run, message = run(settings, "store-retention/store-retention")
    assert flow_run.state_name == "Completed", flow_run.state
    assert message.startswith("1 rows went past their retention"), message
    assert "| execution journal | execution_journal |" in artifact(
        settings, "store-retention", flow_run
    )
    gone = "SELECT id FROM automates.execution_journal WHERE id = :id"
    assert store_rows(settings, gone, id=old[0]["id"]) == []


def test_reconcile_automate_reports_findings_on_drift(server: Settings, repo_worker: str) -> None:
    settings = layer_settings(server, project_root=REPO, work_pool=repo_worker)
    asyncio.run(sync(settings, settings.database_url or ""))

    async def add_ghost() -> None:
        async with prefect_client(settings.api_url) as client:
            flow_id = await client.create_flow_from_name("hand-made")
            await client.create_deployment(flow_id=flow_id, name="ghost")

    asyncio.run(add_ghost())
    seen = len(raised_alerts(settings))  # the session's store outlives each test
    flow_run, message = run(settings, "registry-reconcile/registry-reconcile")
    assert flow_run.state_name == "Findings"
    assert message.endswith("1 drift(s)")
    assert "| ghost | hand-made/ghost |" in artifact(settings, "registry-reconcile", flow_run)
    # The drift is an alert of its own (no automate's), listing the finding.
    # One per run that found it: the shipped hourly (:07) run on the test's worker may too.
    drifts = [a for a in raised_alerts(settings)[seen:] if a["kind"] == "reconcile_drift"]
    assert drifts
    for drift in drifts:
        assert (drift["automate"], drift["title"]) == (None, "registry drift: 1 finding(s)")
        assert "ghost" in drift["body"] and drift["resolved_at"] is None


def test_retention_deletes_only_old_finished_runs_of_automates(
    server: Settings, repo_worker: str
) -> None:
    settings = layer_settings(server, project_root=REPO, work_pool=repo_worker)
    asyncio.run(sync(settings, settings.database_url or ""))
    old, recent, foreign = asyncio.run(_finished_runs(settings))

    flow_run, message = run(settings, "flow-run-retention/flow-run-retention", keep_days=2)
    assert flow_run.state_name == "Completed", flow_run.state
    assert message.startswith("deleted 1 finished runs")

    async def remaining() -> set[Any]:
        async with prefect_client(settings.api_url) as client:
            return {r.id for r in await client.read_flow_runs(limit=200)}

    left = asyncio.run(remaining())
    assert old not in left
    assert {recent, foreign} <= left


async def _finished_runs(settings: Settings) -> tuple[Any, Any, Any]:
    """A run of an automate that ended 3 days ago, one that ended now, and an old foreign one."""
    from datetime import UTC, datetime, timedelta

    from prefect.states import Completed, Running, Scheduled
    from sqlalchemy import text

    from automates.store.engine import make_engine

    async with prefect_client(settings.api_url) as client:
        ours = await client.read_deployment_by_name("disk-space-check/disk-space-check")
        flow_id = await client.create_flow_from_name("hand-made")
        foreign_deployment = await client.create_deployment(flow_id=flow_id, name="foreign")
        ids = []
        # Made for tomorrow: a run due now would be fetched by the test's worker, which may take
        # it even after it was forced to Completed (no persisted result lets it leave) and run
        # it again, stamping a new end time over the aged one.
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        for deployment_id in (ours.id, ours.id, foreign_deployment):
            flow_run = await client.create_flow_run_from_deployment(
                deployment_id, state=Scheduled(scheduled_time=tomorrow)
            )
            await client.set_flow_run_state(flow_run.id, Running(), force=True)
            await client.set_flow_run_state(flow_run.id, Completed(), force=True)
            ids.append(flow_run.id)
    # The API stamps end times itself; age two of the runs in the server's own table.
    engine = make_engine(settings.database_url or "")
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE flow_run SET end_time = now() - interval '3 days' WHERE id = ANY(:ids)"),
            {"ids": [ids[0], ids[2]]},
        )
    engine.dispose()
    return ids[0], ids[1], ids[2]
