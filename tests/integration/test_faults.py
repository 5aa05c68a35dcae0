"""Faults while runs are in flight (issue 12, finding 2): no run hangs unseen, none runs twice,
each is journaled exactly once.

A real worker's whole process group is killed with SIGKILL mid-run: Prefect's heartbeat
automation (automates/server/unresponsive.py) marks the run Crashed within its bound, and the
`run-watch` automate, run by another real worker from its declaration, journals it once. A run
a worker took and never started (Pending, as after a database outage) is re-submitted once and
then ended with the reason.

Bound: a killed run is Crashed within UNRESPONSIVE_AFTER_SECONDS (90 s) plus one heartbeat and
the server's proactive-trigger pass; the test waits up to 300 s for that condition.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from functools import partial
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.states import Pending
from sqlalchemy import text

from automates.platform import components
from automates.server.unresponsive import CRASHED_MESSAGE
from automates.settings import Settings
from automates.store.engine import make_engine
from automates.sync import sync
from tests.conftest import REPO
from tests.fixtures.misfire import api, deployment_runs
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import layer_settings, run_deployment, wait_for

WATCH = "run-watch/run-watch"
CRASH_BOUND_SECONDS = 300


def journal_rows(settings: Settings, flow_run_id: Any) -> list[dict[str, Any]]:
    engine = make_engine(settings.database_url or "")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT * FROM automates.execution_journal WHERE flow_run_id = :id"),
                {"id": flow_run_id},
            )
            return [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()


def declare(project: Project, server: Settings, victim_pool: str, watch_pool: str) -> Settings:
    shutil.copy(REPO / "flows" / "run_watch.py", project.root / "flows" / "run_watch.py")
    release = project.root / "release"
    project.declare(
        automate(
            "sleeper",
            kind="oneshot",
            schedules=[],
            entrypoint=None,
            command=["scripts/hold.sh", str(release)],
            family="exports",
            timeout_seconds=900,
            work_pool=victim_pool,
        ),
        automate(
            "run-watch",
            kind="tool",
            schedules=[],
            family="sre",
            entrypoint="flows/run_watch.py:run_watch",
            work_pool=watch_pool,
        ),
    )
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    return settings


def test_a_run_whose_worker_is_killed_is_crashed_and_journaled_once(
    server: Settings, project: Project, worker: str
) -> None:
    victim_pool = f"victim-{os.urandom(3).hex()}"
    settings = declare(project, server, victim_pool, worker)
    victim = layer_settings(settings, work_pool=victim_pool)
    components.start_worker(victim, victim_pool)
    try:
        sleeper = api(
            settings, partial(PrefectClient.read_deployment_by_name, name="script/sleeper")
        )
        run = api(settings, lambda c: c.create_flow_run_from_deployment(sleeper.id))

        def running() -> Any:
            found = api(settings, lambda c: c.read_flow_run(run.id))
            return found if found.state_name == "Running" else None

        wait_for(running, 120, "the sleeper's run to be Running")
        pid = components.worker(victim, victim_pool).pid()
        assert pid is not None
        os.killpg(os.getpgid(pid), signal.SIGKILL)  # the worker and the runs it started

        def crashed() -> Any:
            found = api(settings, lambda c: c.read_flow_run(run.id))
            return found if found.state_name == "Crashed" else None

        dead = wait_for(crashed, CRASH_BOUND_SECONDS, "the killed run to be marked Crashed")
        assert dead.state is not None and dead.state.message == CRASHED_MESSAGE
        assert journal_rows(settings, run.id) == []  # its guard never got to write it

        watch = run_deployment(settings, WATCH, timeout=180)
        assert watch.state_name == "Findings", watch.state
        [row] = journal_rows(settings, run.id)
        assert (row["automate"], row["outcome"]) == ("sleeper", "crashed")
        assert row["context"]["journaled_by"] == "run-watch"
        again = run_deployment(settings, WATCH, timeout=180)
        assert again.state is not None and again.state.is_completed()
        assert len(journal_rows(settings, run.id)) == 1  # exactly once
        assert len(deployment_runs(settings, sleeper.id)) == 1  # nothing ran twice
    finally:
        (project.root / "release").touch()  # the script's own process group outlived the kill
        components.worker(victim, victim_pool).stop()


def test_a_run_that_never_starts_is_resubmitted_once_then_ended(
    server: Settings, project: Project, worker: str
) -> None:
    nobody = f"nobody-{os.urandom(3).hex()}"  # a pool whose worker took the run, then died
    settings = declare(project, server, nobody, worker)
    sleeper = api(settings, partial(PrefectClient.read_deployment_by_name, name="script/sleeper"))
    run = api(settings, lambda c: c.create_flow_run_from_deployment(sleeper.id))

    def stall() -> None:  # what a worker does before it starts a run's process
        api(settings, lambda c: c.set_flow_run_state(run.id, Pending(), force=True))

    stall()
    first = run_deployment(settings, WATCH, timeout=180, pending_grace_seconds=0)
    assert first.state_name == "Findings", first.state
    resubmitted = api(settings, lambda c: c.read_flow_run(run.id))
    assert resubmitted.state_name == "Scheduled"  # any worker of its pool may take it again

    stall()
    second = run_deployment(settings, WATCH, timeout=180, pending_grace_seconds=0)
    assert second.state_name == "Findings", second.state
    ended = api(settings, lambda c: c.read_flow_run(run.id))
    assert ended.state_name == "Crashed"
    assert ended.state is not None and "never started" in (ended.state.message or "")
    # ... and journaled, once, at the watch's next pass.
    run_deployment(settings, WATCH, timeout=180, pending_grace_seconds=0)
    [row] = journal_rows(settings, run.id)
    assert row["outcome"] == "crashed"
