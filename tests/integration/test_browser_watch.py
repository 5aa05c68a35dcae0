"""browser-job-watch on a real server, run by a real worker from a declaration: jobs
whose worker died end `lost`, a job whose flow run ended before any claim ends `failed`, and a
job still inside its timeout is left alone.

Residential workers are not needed: jobs are claimed and finished with the gate's own
statements, and flow runs get the states Prefect gives them when a worker's process dies
(Crashed) or an operator cancels one (Cancelled)."""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import State
from prefect.states import Cancelled, Crashed, Running
from sqlalchemy import text

from automates.browser.deploy import ensure_browser_deployment
from automates.browser.enqueue import BrowserJob, enqueue_job, get_job
from automates.settings import Settings
from automates.settings.groups import BrowserSettings
from automates.store import browser_jobs
from automates.store.engine import make_engine, transaction
from automates.sync import sync
from tests.conftest import REPO
from tests.fixtures.commands import invoke_json
from tests.fixtures.misfire import api, events_named
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, raised_alerts, run_deployment, wait_for

WATCH = "browser-job-watch/browser-job-watch"


def lost_alerts(settings: Settings, *found: BrowserJob) -> dict[str, dict[str, Any]]:
    """The browser_job_lost alerts of these jobs, by job id (at most one each)."""
    ids = {str(job.id) for job in found}
    raised = [a for a in raised_alerts(settings) if a["kind"] == "browser_job_lost"]
    told = {a["facts"]["job_id"]: a for a in raised if a["facts"]["job_id"] in ids}
    assert len(told) == len([a for a in raised if a["facts"]["job_id"] in ids]), raised
    return told


def test_the_watch_ends_the_jobs_no_worker_will_report_on(
    server: Settings, project: Project, worker: str
) -> None:
    nobody = f"nobody-{os.urandom(3).hex()}"  # a pool no worker serves: jobs stay where put
    # The shipped flow, declared without a schedule: a scheduled run of the shipped */5
    # declaration would race the test's own run (and be skipped by, or skip, it).
    shutil.copy(REPO / "flows" / "browser_watch.py", project.root / "flows" / "browser_watch.py")
    project.declare(
        automate(
            "browser-job-watch",
            kind="tool",
            schedules=[],
            family="browser",
            entrypoint="flows/browser_watch.py:browser_job_watch",
            work_pool=worker,
        )
    )
    settings = project.settings(server, browser=BrowserSettings(pool=nobody))
    asyncio.run(sync(settings, settings.database_url or ""))
    asyncio.run(ensure_browser_deployment(settings))
    engine = make_engine(settings.database_url or "")
    with transaction(engine) as connection:  # other tests' jobs lost their flow runs
        connection.execute(text("DELETE FROM automates.browser_jobs"))
    crashed, vanished, busy, cancelled, finished = (
        enqueue_job(settings, "page_snapshot", {"url": f"https://example.org/{i}"}, 60)
        for i in range(5)
    )
    with transaction(engine) as connection:
        for job in (crashed, vanished, busy, finished):
            assert browser_jobs.claim_job(connection, job.id, "home-1") is not None
        assert browser_jobs.finish_job(
            connection, finished.id, "home-1", "done", {"t": 1}, None, {}
        )
        # Claimed ten minutes ago with a 60 s timeout: its worker would have reported by now.
        connection.execute(
            text(
                "UPDATE automates.browser_jobs SET started_at = now() - interval '10 minutes'"
                " WHERE id = :id"
            ),
            {"id": vanished.id},
        )

    async def as_it_happened(client: PrefectClient) -> None:
        happened: list[tuple[BrowserJob, State[Any]]] = [
            (crashed, Crashed(message="the worker's process exited")),
            (cancelled, Cancelled(message="cancelled by an operator")),
            (vanished, Running()),
            (busy, Running()),
        ]
        for job, state in happened:
            assert job.flow_run_id is not None
            await client.set_flow_run_state(job.flow_run_id, state, force=True)

    api(settings, as_it_happened)

    run = run_deployment(settings, WATCH, timeout=180)
    assert run.state is not None and run.state.is_completed()
    assert (run.state_name, run.state.message) == (
        "Findings",
        "2 lost, 1 failed unclaimed, 1 still queued or running",
    )
    now = {job.id: get_job(settings, job.id) for job in (crashed, vanished, busy, cancelled)}
    assert now[crashed.id].status == "lost" and now[crashed.id].finished_at is not None
    assert "its flow run ended Crashed without the job's report" in (now[crashed.id].error or "")
    assert now[vanished.id].status == "lost"
    assert "past its 60 s timeout and 300 s of grace" in (now[vanished.id].error or "")
    assert now[busy.id].status == "running" and now[busy.id].error is None
    assert (now[cancelled.id].status, now[cancelled.id].attempts) == ("failed", 0)
    assert now[cancelled.id].started_at is None
    assert "ended Cancelled before any worker claimed it" in (now[cancelled.id].error or "")
    assert get_job(settings, finished.id).status == "done"
    # An alert for each claimed job ended lost; none for the unclaimed one ended failed.
    told = lost_alerts(settings, crashed, vanished, busy, cancelled, finished)
    assert set(told) == {str(crashed.id), str(vanished.id)}
    assert told[str(crashed.id)]["flow_run_id"] == crashed.flow_run_id
    assert told[str(vanished.id)]["flow_run_id"] == vanished.flow_run_id
    assert all(a["automate"] is None and "is not re-run" in a["body"] for a in told.values())

    # The vanished worker's flow run, still Running, is marked Crashed with the reason.
    assert vanished.flow_run_id is not None
    flow_run_id = vanished.flow_run_id
    state = api(settings, lambda c: c.read_flow_run(flow_run_id)).state
    assert state is not None and state.name == "Crashed"
    assert (state.message or "").startswith("browser job lost: claimed by home-1")

    # A report arriving after the verdict is refused: the job stays lost.
    with transaction(engine) as connection:
        assert not browser_jobs.finish_job(
            connection, crashed.id, "home-1", "done", {"t": 1}, None, {}
        )
    assert get_job(settings, crashed.id).status == "lost"

    # One event per ended job, for automations to notify on; never the payload.
    def both_lost() -> list[dict[str, Any]] | None:
        found = events_named(settings, "automates.browser.job.lost")
        return found if len(found) == 2 else None

    lost = wait_for(
        both_lost,
        60,
        "the lost-job events",
    )
    assert {e["resource"]["prefect.resource.id"] for e in lost} == {
        f"automates.browser-job.{crashed.id}",
        f"automates.browser-job.{vanished.id}",
    }
    assert all("example.org" not in str(e) for e in lost)

    # The operator's listing: the lost ones, without payloads or results.
    listed = invoke_json(cli_env(settings), "browser", "list", "--status", "lost")
    assert {row["id"] for row in listed} == {str(crashed.id), str(vanished.id)}
    assert all("payload" not in row and "result" not in row for row in listed)

    # Nothing left to end: the next run finds nothing.
    again = run_deployment(settings, WATCH, timeout=180)
    assert again.state is not None
    assert (again.state_name, again.state.message) == (
        "Completed",
        "0 lost, 0 failed unclaimed, 1 still queued or running",
    )
    # ... and told once (lost_alerts refuses two alerts of a job).
    assert set(lost_alerts(settings, crashed, vanished, busy, cancelled, finished)) == set(told)
    engine.dispose()
