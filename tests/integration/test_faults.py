"""A run that a worker took and never started (Pending, as after a worker or database outage)
is re-submitted once by run-watch, then ended with the reason and journaled once (issue 12,
finding 2). run-watch runs from its declaration on a real worker of the session's server.

Killing real processes (a worker's group, the dispatcher, PostgreSQL, the server) is in
test_layer_faults.py, on a layer of its own.
"""

from __future__ import annotations

import os
import shutil
from functools import partial
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.states import Pending

from automates.settings import Settings
from tests.conftest import REPO
from tests.fixtures.misfire import api
from tests.fixtures.projects import Project, automate, script
from tests.fixtures.servers import run_deployment, store_rows

WATCH = "run-watch/run-watch"
CRASH_BOUND_SECONDS = 300


def journal_rows(settings: Settings, flow_run_id: Any) -> list[dict[str, Any]]:
    return store_rows(
        settings,
        "SELECT * FROM automates.execution_journal WHERE flow_run_id = :id",
        id=flow_run_id,
    )


def declare(project: Project, server: Settings, victim_pool: str, watch_pool: str) -> Settings:
    shutil.copy(REPO / "flows" / "run_watch.py", project.root / "flows" / "run_watch.py")
    release = project.root / "release"
    return project.declare_and_sync(
        server,
        script(
            "sleeper",
            ["scripts/hold.sh", str(release)],
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
    assert row["context"]["journaled_by"] == "run-watch"
