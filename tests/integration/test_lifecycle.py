"""The README's first command, as a user runs it: `automates up` on embedded defaults.

No database URL is given: the embedded PostgreSQL starts from the wheel in the data folder,
the Prefect server runs on it, the registry is synced and a worker serves it. `up` is safe to
run twice, `down` stops everything, and the data survives into the next `up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx

from automates.server.client import prefect_client
from tests.conftest import REPO, free_port, shipped_registry


def automates(env: dict[str, str], *args: str, expect: int = 0) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "automates.cli", *args, "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == expect, done.stdout + done.stderr
    return json.loads(done.stdout)


def _status_when(env: dict[str, str], condition: Callable[[Any], bool]) -> Any:
    """`automates status --json` once `condition` holds of it (exit 0 or 1), within 90 s."""
    deadline = time.monotonic() + 90
    while True:
        done = subprocess.run(
            [sys.executable, "-m", "automates.cli", "status", "--json"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stdout + done.stderr
        report = json.loads(done.stdout)
        assert report["ok"] is (done.returncode == 0)
        if condition(report) or time.monotonic() > deadline:
            return report


def _state_of(run_id: str, api_url: str) -> str | None:
    async def read() -> str | None:
        async with prefect_client(api_url) as client:
            return (await client.read_flow_run(UUID(run_id))).state_name

    return asyncio.run(read())


def test_up_twice_run_down_up_again(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "AUTOMATES_DATA_DIR": str(tmp_path / "data"),
        "AUTOMATES_SERVER_PORT": str(port),
    }
    env.pop("AUTOMATES_DATABASE_URL", None)
    try:
        first = automates(env, "up")
        layer = ["embedded-postgresql", "prefect-server", "worker-local", "worker-agents", "alerts"]
        assert first["started"] == layer
        assert first["ui_url"] == f"http://127.0.0.1:{port}"
        assert "host=" in first["database"]  # the Unix socket of the embedded server
        assert len(first["sync"]["created"]) == len(shipped_registry().deployable)

        second = automates(env, "up")
        assert second["started"] == []
        assert second["reused"] == layer
        assert second["sync"]["server_writes"] == 0

        status = automates(env, "status")
        assert status["ok"] and status["api_ready"] and status["problems"] == []
        assert status["components"] == dict.fromkeys(["prefect-server", *layer], "running")

        # The agent dispatcher serves agent task runs; sync saved the templates and the CLI block.
        task_run = automates(
            env, "task-run", "start", "--codename", "smoke", "--agent", "atlas", "--template",
            "audit", "--prompt", "Check the layer.", "--dry-run", "--wait",
        )  # fmt: skip
        assert task_run["status"] == "completed" and task_run["started_at"] is None
        assert "--permission-mode" in task_run["command"]

        prefect = str(Path(sys.executable).with_name("prefect"))
        ran = subprocess.run(
            [prefect, "deployment", "run", "disk-space-check/disk-space-check", "--watch"],
            env={**env, "PREFECT_API_URL": first["api_url"]},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "Completed" in ran.stdout
        [run_id] = re.findall(r"UUID: ([0-9a-f-]{36})", ran.stdout)

        assert automates(env, "down")["stopped"] == [
            "worker-agents",
            "worker-local",
            "alerts",
            "prefect-server",
            "embedded-postgresql",
        ]
        stopped = automates(env, "status", expect=1)  # the layer does not serve
        assert not stopped["api_ready"] and set(stopped["components"].values()) == {"stopped"}
        assert automates(env, "down")["stopped"] == []

        again = automates(env, "up")
        assert again["sync"]["created"] == [] and again["sync"]["server_writes"] == 0
        rows = {r["name"]: r for r in automates(env, "list", "--family", "sre")}
        assert rows["disk-space-check"]["runs"] >= 1  # a */15 tick may have added one
        assert _state_of(run_id, again["api_url"]) == "Completed"  # history survived
    finally:
        automates(env, "down")


def test_a_dead_component_shows_dead_and_a_second_up_restarts_it(tmp_path: Path) -> None:
    """On a server bound beyond loopback, with Prefect's basic auth (required there): the
    database killed under the running server makes the API not ready; the agent dispatcher
    killed shows dead; `status` exits 1 for both; a second `up` brings both back."""
    data, auth = tmp_path / "data", f"admin:{uuid4().hex}"
    env = {
        **os.environ,
        "AUTOMATES_DATA_DIR": str(data),
        "AUTOMATES_SERVER_PORT": str(free_port()),
        "AUTOMATES_SERVER_HOST": "0.0.0.0",
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_API_AUTH_STRING": auth,
    }
    env.pop("AUTOMATES_DATABASE_URL", None)
    try:
        first = automates(env, "up")  # sync, worker and dispatcher all pass the auth
        api = first["api_url"]
        assert automates(env, "status")["ok"]
        # The store block's password is for holders of the auth string only.
        anyone = httpx.post(f"{api}/block_documents/filter", json={"include_secrets": True})
        assert anyone.status_code == 401
        holder = httpx.post(
            f"{api}/block_documents/filter",
            json={"include_secrets": True},
            auth=tuple(auth.split(":", 1)),  # type: ignore[arg-type]
        )
        assert holder.status_code == 200

        postmaster = int((data / "pg" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        report = _status_when(env, lambda r: not r["api_ready"])
        assert not report["ok"] and not report["api_ready"], report
        assert "not ready" in report["api"] and "/ready" in report["api"]
        assert report["components"]["embedded-postgresql"] == "dead"
        assert report["components"]["prefect-server"] == "running"  # alive, but cannot serve

        dispatcher = int((data / "run" / "worker-agents.pid").read_text())
        # Without its database, Prefect stops the dispatcher by itself after enough failed
        # polls: it may be gone already, which is the state this step wants.
        with contextlib.suppress(ProcessLookupError):
            os.kill(dispatcher, signal.SIGKILL)
        report = _status_when(env, lambda r: r["components"]["worker-agents"] == "dead")
        assert report["components"]["worker-agents"] == "dead", report
        assert any(p.startswith("worker-agents is dead") for p in report["problems"])
        text = subprocess.run(
            [sys.executable, "-m", "automates.cli", "status"],
            env={**env, "COLUMNS": "200"}, cwd=REPO, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert text.returncode == 1
        assert "worker-agents: dead" in text.stdout and "embedded-postgresql: dead" in text.stdout

        again = automates(env, "up", "--no-sync")  # the repair needs no sync
        assert {"embedded-postgresql", "worker-agents"} <= set(again["started"]), again
        assert "prefect-server" in again["reused"]  # waited until it could serve again
        status = automates(env, "status")
        assert status["ok"] and status["api_ready"], status
        assert set(status["components"].values()) == {"running"}
    finally:
        automates(env, "down")
