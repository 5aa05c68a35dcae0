"""`automates status` lists every work pool's workers as the Prefect server sees them (a
real server, a real process worker), and counts a pool of managed deployments without a live
worker against `ok`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.actions import WorkPoolCreate

from automates.errors import ServerError
from automates.platform import lifecycle
from automates.registry.model import MANAGED_TAG
from automates.server.client import prefect_client
from automates.settings import Settings
from tests.conftest import REPO
from tests.fixtures.commands import status_report
from tests.fixtures.servers import cli_env, layer_settings, wait_for

DEADLINE = 120.0  # a worker's start and first heartbeat, on a loaded 2-core machine


def status(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`automates status ARGS` as an operator runs it; it exits 0 (all well) or 1 (not)."""
    done = subprocess.run(
        [sys.executable, "-m", "automates.cli", "status", *args],
        env={**env, "COLUMNS": "250"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done


def status_when(env: dict[str, str], condition: Callable[[Any], bool], what: str) -> Any:
    """`status --json`'s report once `condition` holds of it, within the deadline. Polled in
    this process (status_report: the function the command prints; an interpreter per poll
    would slow, on two cores, the worker start being waited for); then asked of the command
    itself, whose report must say the same and whose exit status must match its `ok`."""
    wait_for(lambda: condition(status_report(env)), DEADLINE, what)
    done = status(env, "--json")
    report = json.loads(done.stdout)
    assert report["ok"] is (done.returncode == 0), report
    assert condition(report), report
    return report


def live(pool: str) -> Callable[[Any], bool]:
    return lambda report: report["workers"].get(pool, {}).get("live", False)


def create_pools(settings: Settings, *pools: str) -> None:
    async def create() -> None:
        async with prefect_client(settings.api_url) as client:
            for pool in pools:
                await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))

    asyncio.run(create())


def deploy(settings: Settings, *deployments: tuple[str, str, bool]) -> None:
    """(name, work pool, managed by the layer) each, of one probe flow."""

    async def create() -> None:
        async with prefect_client(settings.api_url) as client:
            flow_id = await client.create_flow_from_name("status-probe")
            for name, pool, managed in deployments:
                await client.create_deployment(
                    flow_id=flow_id,
                    name=name,
                    work_pool_name=pool,
                    tags=[MANAGED_TAG] if managed else [],
                )

    asyncio.run(create())


def pool_problems(report: Any) -> list[str]:
    """The workers' warnings (they never make `ok` false: see lifecycle.status)."""
    assert not any(p.startswith("workers:") for p in report["problems"])
    return [w for w in report["warnings"] if w.startswith("workers:")]


@pytest.fixture
def own_data(server: Settings, tmp_path: Path) -> Settings:
    """The test server's settings with a data folder of their own: pid files written there
    are out of the session's reach (its teardown stops every worker pid file it finds)."""
    return layer_settings(server, data_dir=tmp_path / "data")


def test_status_lists_each_pools_workers_with_their_heartbeats(
    server: Settings, worker: str
) -> None:
    idle = f"idle-{os.urandom(3).hex()}"
    create_pools(server, idle)
    env = cli_env(layer_settings(server))

    report = status_when(env, live(worker), f"the worker on {worker!r} to show live")
    [seen] = report["workers"][worker]["workers"]
    assert seen["name"] == f"{socket.gethostname()}-{worker}"
    assert seen["status"] == "ONLINE"
    beat = datetime.fromisoformat(seen["last_heartbeat"])
    assert datetime.now(UTC) - beat < timedelta(seconds=DEADLINE)
    assert 0 <= seen["age_seconds"] < DEADLINE

    assert report["workers"][idle] == {"live": False, "workers": []}
    # The settings' pools are listed whether or not the server has them.
    settings = layer_settings(server)
    for pool in (settings.work_pool, settings.agent.pool, settings.browser.pool):
        assert pool in report["workers"], report["workers"]
    assert pool_problems(report) == []  # no managed deployment: nothing to warn about

    text = status(env).stdout
    assert "workers (as the server sees them):" in text
    assert f"pool {worker}: live" in text
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)"
    beat_line = re.escape(seen["name"]) + r": ONLINE, last heartbeat " + when
    assert re.search(beat_line, text), text
    assert f"pool {idle}: no live worker" in text


def test_a_pool_of_managed_deployments_without_a_live_worker_is_a_warning(
    own_data: Settings, worker: str
) -> None:
    idle, foreign = f"idle-{os.urandom(3).hex()}", f"foreign-{os.urandom(3).hex()}"
    create_pools(own_data, idle, foreign)
    env = cli_env(own_data)
    # The worker creates its pool as it starts: once it is live, the pool is there.
    status_when(env, live(worker), f"the worker on {worker!r} to show live")
    deploy(
        own_data,
        ("served", worker, True),
        ("waiting", idle, True),
        ("not-ours", foreign, False),  # untagged: its pool does not count
    )

    report = status_when(env, live(worker), f"the worker on {worker!r} to stay live")
    assert pool_problems(report) == [
        f"workers: work pool {idle!r} has no online worker (deployments 'waiting')"
    ]
    assert report["workers"][foreign]["live"] is False
    text = status(env).stdout
    assert f"warning: workers: work pool {idle!r} has no online worker" in text


def test_a_failed_or_slow_read_is_a_warning_not_a_crash(
    own_data: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refused(settings: Settings) -> Any:
        raise ServerError("the Prefect API refused POST /work_pools/filter: 500")

    monkeypatch.setattr(lifecycle, "_read_workers", refused)
    report = lifecycle.status(own_data)
    assert report["api_ready"] and report["workers"] == {}
    assert pool_problems(report) == [
        "workers: cannot read the work pools and their workers "
        "(the Prefect API refused POST /work_pools/filter: 500)"
    ]

    async def hangs(settings: Settings) -> Any:
        await asyncio.sleep(60)

    monkeypatch.setattr(lifecycle, "_read_workers", hangs)
    monkeypatch.setattr(lifecycle, "WORKERS_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()
    report = lifecycle.status(own_data)
    assert time.monotonic() - started < 30
    assert report["workers"] == {}
    assert pool_problems(report) == [
        "workers: the Prefect API did not list the work pools and their workers within 0.5 s"
    ]
