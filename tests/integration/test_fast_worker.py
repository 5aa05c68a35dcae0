"""The default pool's fast worker through a real server: runs picked up on the server's event,
each in its own process forked from the run launcher (automates/platform/fast_worker.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from automates.platform import components
from automates.settings import Settings
from tests.fixtures.commands import deployment_run
from tests.fixtures.processes import alive
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import run_all, wait_for

READY = re.compile(r"run launcher ready \(pid (\d+)\)")


def whoami(name: str, pool: str, **fields: Any) -> dict[str, Any]:
    return automate(
        name,
        kind="oneshot",
        schedules=[],
        entrypoint="flows/whoami.py:whoami",
        work_pool=pool,
        **fields,
    )


def launchers(settings: Settings, pool: str) -> list[int]:
    """The pids of the run launchers the pool's worker said were ready, oldest first."""
    log = components.worker(settings, pool).log_file
    text = log.read_text(errors="replace") if log.exists() else ""
    return [int(pid) for pid in READY.findall(text)]


def ready_launcher(settings: Settings, pool: str, not_: int | None = None) -> int:
    def live_launcher() -> int | None:
        found = [pid for pid in launchers(settings, pool) if pid != not_]
        return found[-1] if found and alive(found[-1]) else None

    return wait_for(live_launcher, 180, "the worker's run launcher to be ready")


def _gone(pid: int) -> bool:
    return not alive(pid)


def record(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def deployment_run_ok(settings: Settings, name: str, **parameters: str) -> str:
    """`prefect deployment run NAME --watch --param …`, which must succeed; its output."""
    done = deployment_run(settings, name, **parameters)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def fast(server: Settings, project: Project, worker: str) -> Settings:
    (project.root / "a.env").write_text("WHOAMI_A=from-a\n")
    (project.root / "b.env").write_text("WHOAMI_B=from-b\n")
    settings = project.declare_and_sync(
        server,
        whoami("who-a", worker, env_files=["a.env"]),
        whoami("who-b", worker, env_files=["b.env"]),
        whoami("who-slow", worker, timeout_seconds=5),
        work_pool=worker,
    )
    ready_launcher(settings, worker)
    return settings


def test_runs_are_forked_from_the_launcher_one_process_each(fast: Settings, tmp_path: Path) -> None:
    pool = fast.work_pool
    launcher = ready_launcher(fast, pool)
    out = tmp_path / "by-cli.json"
    deployment_run_ok(fast, "whoami/who-a", out=str(out))
    by_cli = record(out)
    # Started from the launcher, not a fresh interpreter; in the worker's checkout.
    assert by_cli["ppid"] == launcher
    assert "automates.platform.run_launcher" in by_cli["parent"]
    assert by_cli["cwd"] == str(fast.project_root.resolve())
    assert by_cli["env"] == {"WHOAMI_A": "from-a"}
    # Prefect's engine loaded the flow from its entrypoint in that checkout, with no pull step
    # to run (sync's one step stays in the folder the run starts in).
    assert by_cli["entrypoint"] == "flows/whoami.py:whoami"

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    runs = asyncio.run(
        run_all(fast, ("whoami/who-a", {"out": str(a)}), ("whoami/who-b", {"out": str(b)}))
    )
    assert [run.state.type.value for run in runs if run.state] == ["COMPLETED", "COMPLETED"]
    first, second = record(a), record(b)
    # Two runs, two processes, each with its own environment only.
    assert len({first["pid"], second["pid"], by_cli["pid"]}) == 3
    assert first["env"] == {"WHOAMI_A": "from-a"}
    assert second["env"] == {"WHOAMI_B": "from-b"}
    assert {first["ppid"], second["ppid"]} == {launcher}
    # Each process ended with its run.
    for pid in (first["pid"], second["pid"], by_cli["pid"]):
        wait_for(partial(_gone, pid), 30, f"process {pid} to end")


def test_a_run_is_killed_at_its_timeout_and_its_process_is_gone(
    fast: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "slow.json"
    (run,) = asyncio.run(run_all(fast, ("whoami/who-slow", {"out": str(out), "sleep": 600})))
    assert run.state is not None and run.state.is_failed(), run.state
    assert "timeout" in (run.state.message or "").lower()
    slow = record(out)
    assert slow["ppid"] == ready_launcher(fast, fast.work_pool)
    wait_for(partial(_gone, slow["pid"]), 60, "the timed-out run's process to be gone")


def test_a_dead_launcher_is_replaced(fast: Settings, tmp_path: Path) -> None:
    pool = fast.work_pool
    first = ready_launcher(fast, pool)
    os.kill(first, signal.SIGKILL)
    second = ready_launcher(fast, pool, not_=first)
    out = tmp_path / "after.json"
    (run,) = asyncio.run(run_all(fast, ("whoami/who-a", {"out": str(out)})))
    assert run.state is not None and run.state.is_completed(), run.state
    assert record(out)["ppid"] == second
