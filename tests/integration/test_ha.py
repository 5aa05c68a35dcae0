"""The highly available profile on this machine's PostgreSQL and Redis (CI has both; this test
fails, never skips, without them): `automates up` with AUTOMATES_REDIS_URL and two API
processes, and Prefect's services in a process of their own.

Runs triggered through the API all run exactly once (counted by their command, not by flow
runs), also after one API process is killed (uvicorn starts another; the API keeps serving);
an every-minute schedule runs each tick once, also across a kill of the services process
(supervisord restarts it). A half-configured profile starts nothing.
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
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psutil
import pytest
import redis

from automates.server.client import prefect_client
from tests.conftest import REPO, free_port
from tests.fixtures.projects import TEMPLATE, registry_yaml
from tests.fixtures.servers import wait_for

REDIS_URL = "redis://127.0.0.1:6379/{db}"


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


def test_two_api_processes_and_a_services_process_run_every_run_and_tick_once(
    tmp_path: Path, scratch_database: str, redis_db: str
) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(TEMPLATE, checkout)
    (checkout / "deployments").mkdir()
    started = tmp_path / "started.txt"
    registry = {
        "automates": [
            _declaration("on-demand", started, []),
            _declaration("every-minute", started, [{"slug": "minute", "cron": "* * * * *"}]),
        ]
    }
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
    try:
        up = automates(env, "up")
        assert {"prefect-server", "prefect-services"} <= set(up["started"]), up
        status = automates(env, "status")
        assert status["ok"], status["problems"]
        server = status["components"]["prefect-server"]["pid"]
        api_processes = _api_processes(server)
        assert len(api_processes) == 2, api_processes

        first = _trigger(api, 10)
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
        second = _trigger(api, 10)
        _wait_completed(api, second)
        starts = _starts(started)
        assert all(starts[str(run)] == 1 for run in [*first, *second]), starts

        # The services process killed: supervisord restarts it; the schedule goes on.
        services = status["components"]["prefect-services"]["pid"]
        os.killpg(services, signal.SIGKILL)
        wait_for(
            lambda: _running_again(env, "prefect-services", services), 120,
            "supervisord to restart the services",
        )  # fmt: skip
        ticks = wait_for(lambda: _scheduled_completed(api, 2), 240, "two scheduled ticks")
        assert len({t for _, t in ticks}) == len(ticks), ticks  # one run per tick
        starts = _starts(started)
        assert all(starts[str(run)] == 1 for run, _ in ticks), starts
    finally:
        automates(env, "down")


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


def _running_again(env: dict[str, str], name: str, old: int) -> bool:
    entry = automates(env, "status")["components"][name]
    return bool(entry["state"] == "running" and entry["pid"] != old)


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


def _scheduled_completed(api: str, count: int) -> list[tuple[UUID, str]] | None:
    """(flow run, scheduled time) of the every-minute automate's completed runs, once there
    are `count`."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async def go() -> list[tuple[UUID, str]]:
        async with prefect_client(api) as client:
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["every-minute"]))
            )
        return [
            (run.id, str(run.expected_start_time)) for run in runs if run.state_name == "Completed"
        ]

    found = asyncio.run(go())
    return found if len(found) >= count else None
