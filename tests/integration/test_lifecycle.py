"""The README's first command, as a user runs it: `automates up` on embedded defaults.

No database URL is given: the embedded PostgreSQL starts from the wheel in the data folder,
the Prefect server runs on it, the registry is synced and a worker serves it. `up` is safe to
run twice, `down` stops everything, and the data survives into the next `up`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

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
        layer = ["embedded-postgresql", "prefect-server", "worker-local", "worker-agents"]
        assert first["started"] == layer
        assert first["ui_url"] == f"http://127.0.0.1:{port}"
        assert "host=" in first["database"]  # the Unix socket of the embedded server
        assert len(first["sync"]["created"]) == len(shipped_registry().deployable)

        second = automates(env, "up")
        assert second["started"] == []
        assert second["reused"] == layer
        assert second["sync"]["server_writes"] == 0

        status = automates(env, "status")
        assert status["embedded_postgresql"] and status["api_healthy"]
        assert status["workers"] == {"worker-local": True, "worker-agents": True}

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
            "prefect-server",
            "embedded-postgresql",
        ]
        stopped = automates(env, "status")
        assert not stopped["embedded_postgresql"] and not stopped["api_healthy"]
        assert automates(env, "down")["stopped"] == []

        again = automates(env, "up")
        assert again["sync"]["created"] == [] and again["sync"]["server_writes"] == 0
        rows = {r["name"]: r for r in automates(env, "list", "--family", "sre")}
        assert rows["disk-space-check"]["runs"] >= 1  # a */15 tick may have added one
        assert _state_of(run_id, again["api_url"]) == "Completed"  # history survived
    finally:
        automates(env, "down")
