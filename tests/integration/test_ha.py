"""The highly available profile on this machine's PostgreSQL and Redis (CI has both; this test
fails, never skips, without them): `automates up` with AUTOMATES_REDIS_URL and two API
processes, Prefect's services in a process of their own, and a second worker started from a
git clone of the project at another path.

Runs triggered through the API all run exactly once (counted by their command, not by flow
runs), also after one API process is killed (uvicorn starts another; the API keeps serving);
20 every-minute automates run each tick of a 5-minute window exactly once, across that kill
and a kill of the services process (supervisord restarts it), each in its own worker's clone.
A half-configured profile starts nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psutil
import pytest
import redis

from automates.server.client import prefect_client
from tests.conftest import REPO, free_port
from tests.fixtures.commands import status_report
from tests.fixtures.projects import TEMPLATE, git, registry_yaml
from tests.fixtures.servers import wait_for

REDIS_URL = "redis://127.0.0.1:6379/{db}"
AUTOMATES = 20  # every-minute automates: 15 on the layer's warm worker, 5 on the remote one
LOCAL = 15
WINDOW_MINUTES = 5
REMOTE_POOL = "remote-b"


def automates(env: dict[str, str], *args: str, expect: int = 0) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "automates.cli", *args, "--json"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert done.returncode == expect, done.stdout + done.stderr
    return json.loads(done.stdout) if expect == 0 else done.stdout + done.stderr


def _declaration(name: str, started: Path, schedules: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "recurring" if schedules else "oneshot",
        "caste": "horlogers",
        "family": "exports",
        "agents": ["atlas"],
        "description": "HA test: counts its starts",
        "schedules": schedules,
        "command": ["scripts/count.sh", str(started), "0"],
        "timeout_seconds": 120,
        "concurrency": "allow",
        "concurrency_limit": None,
        "misfire": "fire_once",
        # A loaded machine may start a run late: within this it is on time, and runs.
        "misfire_grace_seconds": 600,
    }


@pytest.fixture
def redis_db() -> Iterator[str]:
    """A Redis database of its own, emptied before and after (fails without Redis)."""
    db = os.getpid() % 15 + 1
    client = redis.Redis.from_url(REDIS_URL.format(db=db))
    client.flushdb()
    try:
        yield REDIS_URL.format(db=db)
    finally:
        client.flushdb()
        client.close()


def test_half_a_profile_starts_nothing(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AUTOMATES_DATA_DIR": str(tmp_path / "data"),
        "AUTOMATES_API_WORKERS": "2",
        "PREFECT_SERVER_DOCKET_URL": "memory://",
    }
    env.pop("AUTOMATES_DATABASE_URL", None)
    error = automates(env, "up", expect=2)
    assert "AUTOMATES_API_WORKERS=2 needs AUTOMATES_REDIS_URL" in error
    assert "set AUTOMATES_DATABASE_URL" in error
    assert "PREFECT_SERVER_DOCKET_URL is set" in error
    assert "Nothing was started" in error
    assert not (tmp_path / "data").exists()


# The window alone is 5 minutes, after `up` and the next whole minute: more than the suite's
# 600 s per test would allow on a loaded machine.
@pytest.mark.timeout(1200)
def test_two_api_processes_a_services_process_and_two_clones_run_every_tick_once(
    tmp_path: Path, scratch_database: str, redis_db: str
) -> None:
    """20 every-minute automates for a 5-minute window on two workers from two clones at
    different paths (the layer's own warm worker, and a remote process worker from a `git
    clone`), while one API process and the services process are killed: every tick in the
    window runs exactly once, in its own worker's clone. (Most ticks run in-process: a Python
    start per run for 20 a minute, beside the other tests, would leave 2 cores behind.)"""
    checkout, clone = _clones(tmp_path)
    started = tmp_path / "started.txt"
    minutes = [
        _declaration(f"every-minute-{i:02}", started, [{"slug": "minute", "cron": "* * * * *"}])
        | {"work_pool": "warm" if i < LOCAL else REMOTE_POOL}
        for i in range(AUTOMATES)
    ]
    registry = {"automates": [_declaration("on-demand", started, []), *minutes]}
    (checkout / "deployments" / "registry.yaml").write_text(registry_yaml(registry))
    port = free_port()
    env = {
        **os.environ,
        "AUTOMATES_PROJECT_ROOT": str(checkout),
        "AUTOMATES_DATA_DIR": str(tmp_path / "data"),
        "AUTOMATES_SERVER_PORT": str(port),
        "AUTOMATES_DATABASE_URL": scratch_database,
        "AUTOMATES_REDIS_URL": redis_db,
        "AUTOMATES_API_WORKERS": "2",
    }
    api = f"http://127.0.0.1:{port}/api"
    remote = None
    try:
        up = automates(env, "up")
        assert {"prefect-server", "prefect-services"} <= set(up["started"]), up
        remote = _remote_worker(tmp_path, api, clone)
        status = automates(env, "status")
        assert status["ok"], status["problems"]
        server = status["components"]["prefect-server"]["pid"]
        api_processes = _api_processes(server)
        assert len(api_processes) == 2, api_processes
        # The window: WINDOW_MINUTES whole minutes from the next one on which every automate
        # has a run. Prefect's scheduler creates runs for future ticks only, on its own loop:
        # on a loaded machine its first pass after the sync can come after the next minute.
        next_minute = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
        first_runs = wait_for(
            lambda: _first_scheduled_tick(api), 300, "the scheduler to create every automate's runs"
        )
        window_start = max(next_minute, first_runs)
        window_end = window_start + timedelta(minutes=WINDOW_MINUTES)

        first = _trigger(api, 6)
        _wait_completed(api, first)

        # One API process killed: uvicorn starts another, and the other one keeps serving.
        os.kill(api_processes[0], signal.SIGKILL)
        assert httpx.get(f"{api}/ready", timeout=10).status_code == 200
        wait_for(
            lambda: (
                len(_api_processes(server)) == 2
                and api_processes[0] not in (_api_processes(server))
            ),
            120,
            "uvicorn to replace the killed API process",
        )
        second = _trigger(api, 6)
        _wait_completed(api, second)
        starts = _starts(started)
        assert all(starts[str(run)] == 1 for run in [*first, *second]), starts

        # The services process killed: supervisord restarts it; the schedules go on.
        services = status["components"]["prefect-services"]["pid"]
        os.killpg(services, signal.SIGKILL)
        wait_for(
            lambda: _running_again(status_report(env), "prefect-services", services), 120,
            "supervisord to restart the services",
        )  # fmt: skip
        # Polled in this process (an interpreter per poll would slow the restart waited for);
        # the CLI's own report says so too.
        assert _running_again(automates(env, "status"), "prefect-services", services)

        wanted = AUTOMATES * WINDOW_MINUTES
        wait_seconds = (window_end - datetime.now(UTC)).total_seconds() + 300
        seen: list[tuple[str, Any]] = []
        try:
            ticks = wait_for(
                lambda: _window_ticks(api, window_start, window_end, wanted, seen), wait_seconds,
                f"{wanted} ticks of the window to complete",
            )  # fmt: skip
        except AssertionError as late:
            raise AssertionError(f"{late}; {_unfinished(seen, wanted, tmp_path)}") from None
    finally:
        if remote is not None:
            os.killpg(remote.pid, signal.SIGTERM)
            remote.wait(timeout=60)
        automates(env, "down")
    per_automate = Counter(name for name, _, _ in ticks)
    assert set(per_automate.values()) == {WINDOW_MINUTES}, per_automate  # each tick, one run
    starts, folders = _starts(started), _folders(started)
    assert all(starts[str(run)] == 1 for _, _, run in ticks), starts  # each body, once
    for name, _, run in ticks:
        expected = checkout if int(name[-2:]) < LOCAL else clone
        assert folders[str(run)] == str(expected), (name, folders[str(run)])


def _clones(tmp_path: Path) -> tuple[Path, Path]:
    """The layer's checkout (a git repository) and a clone of it at another path."""
    checkout = tmp_path / "checkout"
    shutil.copytree(TEMPLATE, checkout)
    (checkout / "deployments").mkdir()
    (checkout / "deployments" / "registry.yaml").write_text("automates: []\n")
    git(checkout, "init", "-q")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "project")
    clone = tmp_path / "elsewhere" / "clone-b"
    git(tmp_path, "clone", "-q", str(checkout), str(clone))
    return checkout, clone


def _remote_worker(tmp_path: Path, api: str, clone: Path) -> subprocess.Popen[bytes]:
    """workers/start-remote-worker from an env file alone, running runs in `clone`."""
    env_file = tmp_path / "remote.env"
    env_file.write_text(
        f"PREFECT_API_URL={api}\nAUTOMATES_WORK_POOL={REMOTE_POOL}\n"
        f"AUTOMATES_PROJECT_ROOT={clone}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMATES_", "PREFECT_API"))}
    with (tmp_path / "remote-worker.log").open("wb") as log:
        return subprocess.Popen(
            [str(REPO / "workers" / "start-remote-worker"), str(env_file)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _window_ticks(
    api: str, start: datetime, end: datetime, count: int, seen: list[tuple[str, Any]]
) -> list[tuple[str, str, UUID]] | None:
    """(automate, scheduled time, flow run) of the every-minute runs scheduled in the window,
    once `count` of them are final; a run that ended other than Completed fails at once.
    `seen` is left holding the runs found, for a report if they never all end."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
    )

    async def go() -> list[Any]:
        async with prefect_client(api) as client:
            names = {d.id: d.name for d in await client.read_deployments()}
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    expected_start_time=FlowRunFilterExpectedStartTime(
                        after_=start,  # type: ignore[arg-type]
                        before_=end - timedelta(seconds=1),  # type: ignore[arg-type]
                    )
                ),
                limit=AUTOMATES * WINDOW_MINUTES * 2,
            )
        return [(names.get(r.deployment_id) or "", r) for r in runs]  # type: ignore[arg-type]

    found = [(n, r) for n, r in asyncio.run(go()) if n.startswith("every-minute-")]
    seen[:] = found
    final = [(n, r) for n, r in found if r.state is not None and r.state.is_final()]
    assert all(r.state_name == "Completed" for _, r in final), [
        (n, r.state_name, r.state and r.state.message) for n, r in final
    ]
    if len(final) < count:
        return None
    return [(n, str(r.expected_start_time), r.id) for n, r in final]


def _first_scheduled_tick(api: str) -> datetime | None:
    """The first tick on which every every-minute automate has a run, once each has one."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    names = [f"every-minute-{i:02}" for i in range(AUTOMATES)]

    async def go() -> dict[str, datetime]:
        async with prefect_client(api) as client:
            ids = {
                d.id: d.name
                for d in await client.read_deployments(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names))
                )
            }
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names)),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                limit=AUTOMATES * 10,  # the first ten ticks of each, at least
            )
        first: dict[str, datetime] = {}
        for run in runs:
            name = ids.get(run.deployment_id)  # type: ignore[arg-type]
            if name is not None and run.expected_start_time is not None:
                first[name] = min(first.get(name, run.expected_start_time), run.expected_start_time)
        return first

    first = asyncio.run(go())
    return max(first.values()) if len(first) == AUTOMATES else None


def _unfinished(seen: list[tuple[str, Any]], wanted: int, tmp_path: Path) -> str:
    """What a window that never completed left: how many runs exist, the states of those not
    final by pool (the layer's warm worker or the remote one), and the remote worker's last
    log lines."""
    states = Counter(
        ("warm" if int(name[-2:]) < LOCAL else REMOTE_POOL, run.state_name)
        for name, run in seen
        if run.state is None or not run.state.is_final()
    )
    log = tmp_path / "remote-worker.log"
    tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
    return (
        f"{len(seen)} of {wanted} runs exist; not final, by pool and state: {dict(states)}; "
        "remote worker's log ends:\n" + "\n".join(tail)
    )


def _api_processes(server: int) -> list[int]:
    """The uvicorn workers of the server (its children that serve, not the tracker); a killed
    one not yet reaped (a zombie) is not one."""
    found = []
    for child in psutil.Process(server).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:  # gone, or a zombie, between the listing and the look
            continue
    return sorted(found)


def _running_again(report: Any, name: str, old: int) -> bool:
    """Whether `status`'s report has component `name` running with a pid other than `old`."""
    entry = report["components"][name]
    return bool(entry["state"] == "running" and entry["pid"] != old)


def _folders(started: Path) -> dict[str, str]:
    """flow run → the folder its command ran in (count.sh's third field)."""
    return {line.split()[0]: line.split()[2] for line in started.read_text().splitlines() if line}


def _starts(started: Path) -> Counter[str]:
    if not started.exists():
        return Counter()
    return Counter(line.split()[0] for line in started.read_text().splitlines() if line)


def _trigger(api: str, count: int) -> list[UUID]:
    async def go() -> list[UUID]:
        async with prefect_client(api) as client:
            deployment = await client.read_deployment_by_name("script/on-demand")
            runs = [client.create_flow_run_from_deployment(deployment.id) for _ in range(count)]
            return [run.id for run in await asyncio.gather(*runs)]

    return asyncio.run(go())


def _wait_completed(api: str, runs: list[UUID]) -> None:
    """Wait until every run completed; one that ended any other way fails at once."""

    async def final() -> dict[UUID, str]:
        async with prefect_client(api) as client:
            found = [await client.read_flow_run(run) for run in runs]
        return {r.id: r.state_name or "" for r in found if r.state and r.state.is_final()}

    def done() -> bool:
        ended = asyncio.run(final())
        assert all(name == "Completed" for name in ended.values()), ended
        return len(ended) == len(runs)

    wait_for(done, 300, f"{len(runs)} triggered runs to complete")
