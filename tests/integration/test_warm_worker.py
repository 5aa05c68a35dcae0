"""The warm worker on a real server: scheduled runs start in its process at their scheduled
time (never before), through the guard; a manual run works; env files are refused there."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.schemas.objects import FlowRun, StateType

from automates.platform import components
from automates.server.client import prefect_client
from automates.settings import Settings
from automates.sync import sync
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import runs_of, wait_for


@pytest.fixture
def warm(server: Settings, project: Project) -> Iterator[Settings]:
    """The project's settings with a warm pool of its own, and a warm worker serving it."""
    pool = f"warm-{os.urandom(3).hex()}"
    settings = project.settings(server, warm_pool=pool)
    yield settings
    components.worker(settings, pool).stop()


def test_scheduled_runs_start_in_process_at_their_time(
    warm: Settings, project: Project, tmp_path: Path
) -> None:
    record = tmp_path / "clock.txt"
    (project.root / "settings.env").write_text("GREETING=hello\n")
    project.declare(
        automate(
            "ticking",
            entrypoint="flows/clock.py:clock",
            schedules=[{"slug": "fast", "every": "10s"}],
            parameters={"record": str(record)},
            work_pool=warm.warm_pool,
        ),
        automate(
            "with-env-file",
            kind="oneshot",
            schedules=[],
            env_files=["settings.env"],
            work_pool=warm.warm_pool,
        ),
        automate(
            "counted",
            kind="oneshot",
            schedules=[],
            entrypoint=None,
            command=["scripts/count.sh", str(tmp_path / "started.txt"), "0"],
            work_pool=warm.warm_pool,
        ),
    )
    report = asyncio.run(sync(warm, warm.database_url or ""))
    assert warm.warm_pool in report.work_pools_created
    assert components.start_warm_worker(warm)

    def two_completed() -> list[FlowRun] | None:
        runs = runs_of(warm, "clock/ticking")
        done = [r for r in runs if r.state_type == StateType.COMPLETED and r.auto_scheduled]
        return done if len(done) >= 2 else None

    finished = wait_for(two_completed, 90, "two scheduled runs")
    lines = [line.split() for line in record.read_text().splitlines()]
    by_run = {run_id: (float(scheduled), float(started)) for run_id, scheduled, started in lines}
    for run in finished:
        scheduled, started = by_run[str(run.id)]
        assert started >= scheduled, f"run {run.id} began {scheduled - started:.3f} s early"
    # In the worker's own process: no flow run got an infrastructure process of its own.
    pids = {run.infrastructure_pid for run in finished}
    assert pids == {str(components.worker(warm, warm.warm_pool).pid())}

    # A script's command knows its own run's id, as on a process worker, though the runs
    # share the worker's process and its environment.
    counted = asyncio.run(_run_now(warm, "script/counted"))
    assert counted.state is not None and counted.state.type == StateType.COMPLETED
    assert (tmp_path / "started.txt").read_text().split()[0] == str(counted.id)

    refused = asyncio.run(_run_now(warm, "hello/with-env-file"))
    assert refused.state is not None and refused.state.type == StateType.FAILED
    assert "env_files" in (refused.state.message or "")


async def _run_now(settings: Settings, full_name: str) -> FlowRun:
    """Start a run as `prefect deployment run` does, and wait for its final state."""
    async with prefect_client(settings.api_url) as client:
        deployment = await client.read_deployment_by_name(full_name)
        run = await client.create_flow_run_from_deployment(deployment.id)
        for _ in range(120):
            run = await client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                return run
            await asyncio.sleep(0.5)
    raise AssertionError(f"{full_name}: the run did not end")
