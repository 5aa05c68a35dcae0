"""Browser jobs end to end: enqueued on the server, pulled by real residential workers through
the gate, run in real Chromium against the local test site."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
from prefect.client.schemas.filters import (
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, StateType
from sqlalchemy import text

from automates.browser.deploy import CodeSource, ensure_browser_deployment
from automates.browser.enqueue import enqueue_job
from automates.browser.launch import job_processes
from automates.errors import BrowserPayloadError
from automates.server.client import prefect_client
from automates.store.engine import make_engine, transaction
from tests.conftest import REPO
from tests.fixtures.browser_jobs import nothing_created
from tests.fixtures.browser_layer import Residential, wait_for_end, wait_for_log
from tests.fixtures.browser_site import MAILBOX, PASSWORD, USERNAME, Site
from tests.fixtures.commands import run_module
from tests.fixtures.servers import cli_env, final_run, wait_for


async def _deployment_id(api_url: str) -> uuid.UUID:
    async with prefect_client(api_url) as client:
        return (await client.read_deployment_by_name("browser-job/browser-job")).id


def test_a_page_snapshot_runs_on_a_residential_worker(
    browser_layer: Residential, browser_site: Site
) -> None:
    job = enqueue_job(
        browser_layer.settings, "page_snapshot", {"url": f"{browser_site.url}/article"}
    )
    assert job.status == "queued" and job.flow_run_id is not None
    done = wait_for_end(browser_layer.settings, job.id)
    assert done.status == "done", done.error
    assert done.result is not None
    assert done.result["title"] == "Quarterly notes"
    assert "Revenue grew." in done.result["text"]
    assert done.result["http_status"] == 200
    assert done.attempts == 1 and done.host in ("home-1", "home-2")
    # The debug screenshot was taken, then purged with the run.
    assert done.counters["screenshots"] == 1 == done.counters["screenshots_purged"]
    assert not list(browser_layer.screenshot_dir.glob(f"browser-{job.id}-*"))


def test_a_portal_login_gets_its_second_factor_from_the_server_and_never_shows_it(
    browser_layer: Residential, browser_site: Site
) -> None:
    payload = {
        "login_url": f"{browser_site.url}/login",
        "username": USERNAME,
        "password": PASSWORD,
        "mailbox": MAILBOX,
    }
    job = enqueue_job(browser_layer.settings, "portal_login", payload)
    done = wait_for_end(browser_layer.settings, job.id)
    assert done.status == "done", done.error
    assert done.result == {"title": "Your account", "welcome": "Welcome back, Ada"}
    assert done.counters["second_factors"] == 1
    code = browser_site.codes_sent[-1]
    engine = make_engine(browser_layer.settings.database_url or "")
    with transaction(engine) as connection:
        consumed_by = connection.execute(
            text("SELECT consumed_by FROM automates.browser_mailbox WHERE code = :c"), {"c": code}
        ).scalar()
        stored = connection.execute(
            text("SELECT payload::text FROM automates.browser_jobs WHERE id = :id"), {"id": job.id}
        ).scalar_one()
    engine.dispose()
    assert consumed_by == job.id
    # The password is sealed in the store (decision 0048): read back with plain SQL, the row
    # holds no piece of it (of 5 characters or more), only a Fernet token in its place; the
    # key is in the data folder, outside the database, its owner's only.
    pieces = {PASSWORD[i:j] for i in range(len(PASSWORD)) for j in range(i + 5, len(PASSWORD) + 1)}
    assert not {piece for piece in pieces if piece in stored}
    assert list(json.loads(stored)["password"]) == ["$encrypted"]
    key_file = browser_layer.settings.data_path / "browser-payload.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    async def run_logs_and_states() -> list[str]:
        async with prefect_client(browser_layer.settings.api_url) as client:
            logs = await client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[job.flow_run_id or uuid.uuid4()]))
            )
            states = await client.read_flow_run_states(job.flow_run_id)  # type: ignore[arg-type]
        return [log.message for log in logs] + [state.message or "" for state in states]

    # The job's row says done before its run logs its last line (`browser job ... (portal_login)
    # done ...`) and before Prefect ships that line: read once it is there.
    shown = wait_for_log(
        lambda: "\n".join(asyncio.run(run_logs_and_states())), lambda t: "(portal_login) done" in t
    )
    seen = shown.splitlines()
    assert any("(portal_login) done" in line for line in seen)  # the logs were read
    everything = "\n".join(
        [
            *seen,
            json.dumps(done.model_dump(mode="json")),
            browser_layer.gate.log.read_text(),
            *(log.read_text() for log in browser_layer.worker_logs),
        ]
    )
    assert code not in everything
    assert PASSWORD not in everything.replace(json.dumps(payload), "")


def test_the_timeout_kills_a_page_that_never_loads(
    browser_layer: Residential, browser_site: Site
) -> None:
    job = enqueue_job(
        browser_layer.settings, "page_snapshot", {"url": f"{browser_site.url}/never"}, 15
    )

    async def flow_run() -> FlowRun:
        async with prefect_client(browser_layer.settings.api_url) as client:
            return await client.read_flow_run(job.flow_run_id)  # type: ignore[arg-type]

    # While the page hangs: the job's process was forked from its worker's run launcher (the
    # deployment names Prefect's engine as its command), not started beside a supervisor.
    wait_for(browser_site.hanging.is_set, 120, "the page to be loading")
    pid = int(wait_for(lambda: asyncio.run(flow_run()).infrastructure_pid, 30, "the run's pid"))
    parent = psutil.Process(pid).parent()
    assert parent is not None and "automates.platform.run_launcher" in parent.cmdline()

    done = wait_for_end(browser_layer.settings, job.id)
    assert done.status == "failed"
    assert done.error == "timed out after 15 s; the browser was killed"
    assert browser_site.hanging.is_set()  # the page was really being loaded
    assert job_processes(job.id) == []  # no process of that job's browser is left
    assert not list(browser_layer.screenshot_dir.glob(f"browser-{job.id}-*"))

    # The job's row says failed before its run raises and Prefect records the run's end.
    ended = wait_for(lambda: final_run(browser_layer.settings, str(job.flow_run_id)), 60, "its end")
    assert ended.state_type == StateType.FAILED


def test_two_workers_run_each_of_many_jobs_exactly_once(
    browser_layer: Residential, browser_site: Site
) -> None:
    ids = [
        enqueue_job(
            browser_layer.settings, "page_snapshot", {"url": f"{browser_site.url}/slow?n={n}"}
        ).id
        for n in range(8)
    ]
    ended = [wait_for_end(browser_layer.settings, job_id) for job_id in ids]
    assert [job.status for job in ended] == ["done"] * len(ids)
    assert all(job.attempts == 1 for job in ended)
    gate_log = wait_for_log(
        browser_layer.gate.log.read_text,
        lambda text: all(f"/jobs/{job_id}/finish -> 200" in text for job_id in ids),
    )
    for job_id in ids:
        assert gate_log.count(f"/jobs/{job_id}/claim -> 200") == 1
        assert gate_log.count(f"/jobs/{job_id}/finish -> 200") == 1
    # A replayed claim of a finished job runs nothing.
    replay = httpx.post(
        f"{browser_layer.gate.url}/automates/browser/jobs/{ids[0]}/claim",
        json={"host": "home-1"},
        headers={"Authorization": f"Bearer {browser_layer.gate.token}"},
    )
    assert replay.status_code == 409


HOSTILE = [
    ("shell_exec", '{"url": "http://x.test/"}', "is not a browser job kind"),
    ("page_snapshot", '{"url": "http://x.test/$(reboot)"}', "'url'"),
    ("page_snapshot", '{"url": "http://x.test/\'; DROP TABLE x; --"}', "'url'"),
    ("page_snapshot", '{"url": "http://x.test/a\\nb"}', "'url'"),
    ("page_snapshot", '{"url": "http://x.test/$$ x $$"}', "'url'"),
    (
        "portal_login",
        '{"login_url": "http://x.test/", "username": "a\\"b", "password": "p", "mailbox": "m"}',
        "'username'",
    ),
    ("page_snapshot", json.dumps({"url": "http://x.test/" + "a" * 5000}), "bytes"),
    ("page_snapshot", '{"url": "http://x.test/", "eval": "1"}', "'eval'"),
    ("page_snapshot", "[1, 2]", "JSON object"),
]


def test_unknown_kinds_and_hostile_payloads_are_refused_with_nothing_created(
    browser_layer: Residential,
) -> None:
    settings = browser_layer.settings
    with nothing_created(settings):
        for kind, payload, names in HOSTILE:
            with pytest.raises(BrowserPayloadError, match=re.escape(names)):
                enqueue_job(settings, kind, payload)
        # The same through the operator's command: exit 2, the field named, as JSON.
        done = run_module(
            "automates.cli",
            "browser",
            "enqueue",
            "page_snapshot",
            "--payload",
            '{"url": "http://x.test/`id`"}',
            "--json",
            env=cli_env(settings),
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert "'url'" in json.loads(done.stdout)["error"]


def test_get_shows_a_job_and_names_an_unknown_one(
    browser_layer: Residential, browser_site: Site
) -> None:
    env = {**cli_env(browser_layer.settings), "AUTOMATES_BROWSER_POOL": "residential"}
    # Deploying again is an update in place: same deployment, same pool.
    deployed = run_module("automates.cli", "browser", "deploy", "--json", env=env)
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["pool"] == "residential"
    done = run_module("automates.cli", "browser", "get", str(uuid.uuid4()), "--json", env=env)
    assert done.returncode == 2 and "no browser job" in json.loads(done.stdout)["error"]
    job = enqueue_job(
        browser_layer.settings, "page_snapshot", {"url": f"{browser_site.url}/article"}
    )
    wait_for_end(browser_layer.settings, job.id)
    shown = run_module("automates.cli", "browser", "get", str(job.id), "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert (record["kind"], record["status"], record["attempts"]) == ("page_snapshot", "done", 1)
    assert record["flow_run_id"] == str(job.flow_run_id)
    assert json.loads(deployed.stdout)["deployment_id"] == str(
        asyncio.run(_deployment_id(browser_layer.settings.api_url))
    )


def test_code_reaches_the_worker_through_a_git_pull_step(
    browser_layer: Residential, browser_site: Site, tmp_path: Path
) -> None:
    repository = tmp_path / "automates.git"
    (repository / "flows").mkdir(parents=True)
    shutil.copy(REPO / "flows" / "browser_job.py", repository / "flows" / "browser_job.py")
    git = ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", "-b", "release"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "browser flow"], check=True)
    source = CodeSource(git_repository=str(repository), git_branch="release")
    asyncio.run(ensure_browser_deployment(browser_layer.settings, source))
    job = enqueue_job(
        browser_layer.settings, "page_snapshot", {"url": f"{browser_site.url}/article"}
    )
    done = wait_for_end(browser_layer.settings, job.id)
    assert done.status == "done", done.error
    cloned = "Deployment step 'git_clone' completed successfully"
    logs = wait_for_log(
        lambda: "\n".join(log.read_text() for log in browser_layer.worker_logs),
        lambda text: any(
            cloned in line and f"browser-{job.id}" in line for line in text.splitlines()
        ),
    )
    run_lines = [line for line in logs.splitlines() if f"browser-{job.id}" in line]
    assert any(cloned in line for line in run_lines)
