"""Service automates on a real Prefect server and process worker: started by sync, restarted
when the command or the run's own process is killed, stopped when disabled, their one-shot
mode run by `automates trigger --once`, a crash loop stopped with an alert, and reconcile
naming a service that should run and does not."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.objects import FlowRun, StateType

from automates.platform import components
from automates.reconcile import DriftKind, reconcile
from automates.settings import Settings
from automates.settings.groups import CrashLoopSettings
from automates.sync import sync
from tests.fixtures.commands import invoke_json
from tests.fixtures.processes import alive
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import (
    cli_env,
    final_run,
    layer_settings,
    raised_alerts,
    runs_of,
    wait_for,
)
from tests.integration.test_triggers import forget_triggers  # noqa: F401 (a fixture)

FULL_NAME = "service/{name}"
WAIT = 120.0  # generous bounds: each wait ends as soon as its condition holds


def service(name: str, pool: str, **fields: Any) -> dict[str, Any]:
    declared: dict[str, Any] = {
        "kind": "service",
        "entrypoint": None,
        "schedules": None,
        "command": ["scripts/service.sh"],
        "once": ["scripts/service_once.sh"],
        "work_pool": pool,
        "retry_backoff_seconds": 1,
        "timeout_seconds": 60,
    }
    return automate(name, **{**declared, **fields})


def pids(project: Project) -> list[int]:
    starts = project.root / "service-starts.txt"
    return [int(line) for line in starts.read_text().split()] if starts.exists() else []


def parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no parent for {pid}")


def loop_runs(settings: Settings, name: str) -> list[FlowRun]:
    runs = runs_of(settings, FULL_NAME.format(name=name))
    return [r for r in runs if not (r.parameters or {}).get("once")]


def running(settings: Settings, name: str) -> list[FlowRun]:
    return [
        r
        for r in loop_runs(settings, name)
        if r.state is not None and r.state.type is StateType.RUNNING
    ]


def in_state(settings: Settings, name: str, state_type: StateType) -> list[FlowRun]:
    return [
        r
        for r in runs_of(settings, FULL_NAME.format(name=name))
        if r.state is not None and r.state.type is state_type
    ]


def stopped_drifts(settings: Settings) -> list[str]:
    report = asyncio.run(reconcile(settings))
    return [d.subject for d in report.of_kind(DriftKind.STOPPED)]


@pytest.mark.usefixtures("forget_triggers")
def test_a_service_is_kept_running_stopped_when_disabled_and_caught_up_once(
    server: Settings, project: Project, worker: str
) -> None:
    project.declare(service("brainstorm", worker))
    settings = project.settings(server)
    env = cli_env(settings)

    report = asyncio.run(sync(settings, settings.database_url or ""))
    assert report.services_started == ["brainstorm"]
    first = wait_for(lambda: pids(project), WAIT, "the service's command to start")[0]
    [loop] = wait_for(lambda: running(settings, "brainstorm"), WAIT, "a Running loop run")
    assert "brainstorm" not in stopped_drifts(settings)
    again = asyncio.run(sync(settings, settings.database_url or ""))
    assert again.services_started == [] and again.server_writes == 0  # one instance

    # The command is killed: the same run starts it again, after its restart delay.
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: pids(project)[1:], WAIT, "the command restarted")[0]
    assert [r.id for r in running(settings, "brainstorm")] == [loop.id]

    # The run's own process is killed: the command dies with it, Prefect's worker marks the
    # run Crashed, and the deployment's keep-running automation starts a new loop run.
    os.kill(parent_of(second), signal.SIGKILL)
    third = wait_for(lambda: pids(project)[2:], WAIT, "a new loop run's command")[0]
    assert not alive(second), "the command outlived the run that started it"
    assert [r.id for r in in_state(settings, "brainstorm", StateType.CRASHED)] == [loop.id]
    [relooped] = wait_for(lambda: running(settings, "brainstorm"), WAIT, "the new loop run")
    assert relooped.id != loop.id and alive(third)

    # Its one-shot mode while the loop runs: skipped, naming the active run.
    skipped = invoke_json(env, "trigger", "brainstorm", "--once")
    done = wait_for(lambda: final_run(settings, skipped["flow_run_id"]), WAIT, "the --once run")
    assert done.state is not None and done.state.name == "Skipped"
    assert not (project.root / "service-once.txt").exists()

    # Disabled: sync stops the loop run; the command goes with it; nothing restarts it.
    project.declare(service("brainstorm", worker, enabled=False))
    stopped = asyncio.run(sync(settings, settings.database_url or ""))
    assert stopped.services_stopped == ["brainstorm"]
    wait_for(lambda: not alive(third), WAIT, "the command to stop")
    wait_for(
        lambda: [
            r
            for r in loop_runs(settings, "brainstorm")
            if r.id == relooped.id and r.state is not None and r.state.type is StateType.CANCELLED
        ],
        WAIT,
        "the loop run Cancelled",
    )
    assert "brainstorm" not in stopped_drifts(settings)

    # Now the one-shot mode runs, once, under the guard.
    caught_up = invoke_json(env, "trigger", "brainstorm", "--once")
    done = wait_for(lambda: final_run(settings, caught_up["flow_run_id"]), WAIT, "the --once run")
    assert done.state is not None and done.state.type is StateType.COMPLETED, done.state
    assert (project.root / "service-once.txt").read_text().split() == ["once"]
    assert len(pids(project)) == 3 and not running(settings, "brainstorm")

    # Declared enabled again but not synced: reconcile says it should run and does not.
    project.declare(service("brainstorm", worker))
    assert stopped_drifts(settings) == ["brainstorm"]


@pytest.mark.usefixtures("forget_triggers")
def test_a_service_that_keeps_exiting_is_stopped_as_a_crash_loop(
    server: Settings, project: Project
) -> None:
    pool = f"pool-{os.urandom(3).hex()}"
    project.declare(
        service("flapping", pool, command=["scripts/broken.sh"], once=None),
    )
    settings = project.settings(server)
    components.start_worker(
        layer_settings(settings, work_pool=pool, crash_loop=CrashLoopSettings(restarts=2)), pool
    )
    try:
        asyncio.run(sync(settings, settings.database_url or ""))
        [stopped] = wait_for(
            lambda: in_state(settings, "flapping", StateType.CANCELLED), WAIT, "a crash-loop stop"
        )
    finally:
        components.worker(settings, pool).stop()
    assert stopped.state is not None and stopped.state.name == "CrashLoop"
    assert "exited 3 times" in (stopped.state.message or "")
    [alert] = [
        a for a in raised_alerts(settings, "flapping") if a["kind"] == "component_crash_loop"
    ]
    assert "crash loop" in alert["title"] and alert["flow_run_id"] == stopped.id
    # Cancelled: the keep-running automation leaves it stopped; reconcile names it.
    assert len(loop_runs(settings, "flapping")) == 1
    assert stopped_drifts(settings) == ["flapping"]
