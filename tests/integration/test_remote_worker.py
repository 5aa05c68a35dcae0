"""Workers on "other hosts", for real: a worker started by workers/start-remote-worker from an
env file alone runs sync's deployments from its own clone, at any path, shows in `status` as
the server sees it, and brings its clone up to the upstream branch only between runs.

The other host is a second git clone of a throw-away project at another path. The flow below
writes which code ran it and from where.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.objects import FlowRun

from automates.platform import lifecycle
from automates.reconcile import reconcile
from automates.server.client import prefect_client
from automates.server.spec import PULL_STEPS, SET_WORKING_DIRECTORY
from automates.settings import Settings
from automates.sync import sync
from tests.conftest import REPO
from tests.fixtures.projects import Project, automate, git
from tests.fixtures.servers import final_run, layer_settings, run_deployment, wait_for

DEADLINE = 90.0  # a worker's start, or a run's, on a loaded 2-core machine

FLOW = '''import time
from pathlib import Path

from prefect import flow

CODE = "{code}"


@flow(name="where")
def where(out: str = "", hold: str = "") -> None:
    """Write the code's version, the checkout's mark (read at the end), this file and the
    working folder; with `hold`, first wait for that file."""
    if hold:
        Path(out + ".started").touch()
        deadline = time.monotonic() + 180
        while not Path(hold).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(hold)
            time.sleep(0.2)
    mark = Path("mark.txt").read_text().strip()
    Path(out).write_text(f"{{CODE}} {{mark}} {{Path(__file__).resolve()}} {{Path.cwd()}}")
'''


def write_version(checkout: Path, code: str) -> None:
    (checkout / "flows" / "where.py").write_text(FLOW.format(code=code))
    (checkout / "mark.txt").write_text(f"{code}\n")


def commit_all(checkout: Path, message: str) -> str:
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", message)
    return git(checkout, "rev-parse", "HEAD")


@dataclass
class RemoteWorker:
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        """The end of its output, for a failure's message."""
        return self.log.read_text(errors="replace")[-6000:]

    def said(self, text: str) -> bool:
        """Whether the worker's output holds `text` (line wrapping ignored)."""
        return " ".join(text.split()) in " ".join(self.log.read_text(errors="replace").split())


@dataclass
class RemotePool:
    """A work pool of the test's own, served only by the remote workers it starts (stopped,
    with their runs, after the test)."""

    name: str
    folder: Path
    started: list[RemoteWorker] = field(default_factory=list)

    def start_worker(self, settings: Settings, checkout: Path, **extra: str) -> RemoteWorker:
        """workers/start-remote-worker with an env file naming the server, the pool and the
        checkout, from a clean environment."""
        env_file = self.folder / "worker.env"
        lines = {
            "PREFECT_API_URL": settings.api_url,
            "AUTOMATES_WORK_POOL": self.name,
            "AUTOMATES_PROJECT_ROOT": str(checkout),
            **extra,
        }
        env_file.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AUTOMATES_", "PREFECT_API"))
        }
        env.update(PREFECT_WORKER_QUERY_SECONDS="1", PYTHONUNBUFFERED="1", COLUMNS="400")
        log = self.folder / "worker.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(REPO / "workers" / "start-remote-worker"), str(env_file)],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = RemoteWorker(process, log)
        self.started.append(worker)
        return worker


@pytest.fixture
def remote_pool(tmp_path: Path) -> Iterator[RemotePool]:
    pool = RemotePool(f"remote-{os.urandom(3).hex()}", tmp_path)
    yield pool
    for worker in pool.started:
        if worker.process.poll() is None:  # the worker and its runs: one process group
            os.killpg(worker.process.pid, signal.SIGTERM)
        worker.process.wait(timeout=30)


def declare_where(project: Project, server: Settings, pool: str) -> Settings:
    return project.declare_and_sync(
        server,
        automate(
            "where",
            kind="oneshot",
            schedules=[],
            entrypoint="flows/where.py:where",
            work_pool=pool,
        ),
    )


def test_a_worker_runs_a_deployment_from_its_own_clone_at_another_path(
    server: Settings, project: Project, tmp_path: Path, remote_pool: RemotePool
) -> None:
    pool = remote_pool.name
    write_version(project.root, "shared")
    git(project.root, "init", "-q", "-b", "main")
    commit_all(project.root, "the project")
    clone = tmp_path / "elsewhere" / "deep" / "clone"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    settings = declare_where(project, server, pool)
    # The syncing checkout then leaves its path: nothing may depend on it.
    moved = project.root.rename(project.root.with_name("moved-away"))
    assert not project.root.exists()

    remote_pool.start_worker(settings, clone)
    out = tmp_path / "where.txt"
    run = run_deployment(settings, "where/where", timeout=90, out=str(out))

    assert run.state_name == "Completed", run.state
    file = clone.resolve() / "flows" / "where.py"
    assert out.read_text() == f"shared shared {file} {clone.resolve()}"
    assert moved.exists()

    # `automates status` lists it among its pool's workers, as the server sees it.
    own_data = layer_settings(server, data_dir=tmp_path / "data")  # no pid file of the session
    report = wait_for(
        lambda: (r := lifecycle.status(own_data))["workers"].get(pool, {}).get("live") and r,
        DEADLINE,
        "the remote worker to show live in status",
    )
    [seen] = report["workers"][pool]["workers"]
    assert seen["name"].endswith(f"-{pool}") and seen["status"] == "ONLINE"


def test_a_worker_updates_to_a_new_commit_only_between_runs(
    server: Settings, project: Project, tmp_path: Path, remote_pool: RemotePool
) -> None:
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    write_version(project.root, "old")
    git(project.root, "init", "-q", "-b", "main")
    old = commit_all(project.root, "old code")
    git(project.root, "remote", "add", "origin", str(origin))
    git(project.root, "push", "-q", "-u", "origin", "main")
    clone = tmp_path / "host-b" / "automates"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    settings = declare_where(project, server, remote_pool.name)
    worker = remote_pool.start_worker(settings, clone, AUTOMATES_WORKER_UPDATE_SECONDS="1")

    # A first run starts on the old code and holds.
    first_out, hold = tmp_path / "first.txt", tmp_path / "release"
    first = asyncio.run(start_run(settings, "where/where", out=str(first_out), hold=str(hold)))
    wait_for(lambda: Path(f"{first_out}.started").exists(), DEADLINE, "the first run to start")

    # New code reaches the origin; the worker sees it but leaves its checkout alone.
    write_version(project.root, "new")
    new = commit_all(project.root, "new code")
    git(project.root, "push", "-q", "origin", "main")
    wait_for(
        lambda: worker.said(f"to {new[:12]} waits: 1 run(s) in flight"),
        DEADLINE,
        "the worker to fetch the new commit and wait for its run",
    )
    assert git(clone, "rev-parse", "HEAD") == old
    assert 'CODE = "old"' in (clone / "flows" / "where.py").read_text()

    # The first run ends on the old code, read to its end.
    hold.touch()
    ended = wait_for(lambda: final_run(settings, first.id), DEADLINE, "the first run to end")
    assert ended.state_name == "Completed", (ended.state, worker.tail())
    here = clone.resolve()
    assert first_out.read_text() == f"old old {here / 'flows' / 'where.py'} {here}"

    # Idle, the worker moves to the new commit and restarts itself on it.
    wait_for(lambda: git(clone, "rev-parse", "HEAD") == new, DEADLINE, "the fast-forward")
    second_out = tmp_path / "second.txt"
    second = run_deployment(settings, "where/where", timeout=90, out=str(second_out))
    assert second.state_name == "Completed", (second.state, worker.tail())
    assert second_out.read_text() == f"new new {here / 'flows' / 'where.py'} {here}"
    assert worker.said(f"from {old[:12]} to {new[:12]}: restarting on the new code")
    log = worker.log.read_text()
    assert log.count("started!") == 2, log  # Prefect's line, once per process image
    assert worker.process.poll() is None  # the same process, re-executed


async def start_run(settings: Settings, full_name: str, **parameters: Any) -> FlowRun:
    async with prefect_client(settings.api_url) as client:
        deployment = await client.read_deployment_by_name(full_name)
        return await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)


def test_a_deployment_synced_with_a_host_path_is_moved_once_then_no_drift(
    server: Settings, project: Project
) -> None:
    settings = project.declare_and_sync(server, automate("older"))

    async def as_synced_before() -> list[Any]:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name("hello/older")
            await client.update_deployment(
                deployment.id,
                DeploymentUpdate(
                    pull_steps=[{SET_WORKING_DIRECTORY: {"directory": str(project.root)}}]
                ),
            )
            return list((await client.read_deployment(deployment.id)).pull_steps or [])

    assert asyncio.run(as_synced_before()) != list(PULL_STEPS)
    drifts = asyncio.run(reconcile(settings)).drifts
    assert [(d.kind.value, d.subject) for d in drifts] == [("mismatch", "older")], drifts

    report = asyncio.run(sync(settings, settings.database_url or ""))
    assert report.updated == {"hello/older": ["pull_steps"]}
    assert asyncio.run(reconcile(settings)).drifts == []
    assert asyncio.run(sync(settings, settings.database_url or "")).server_writes == 0
