"""The timed operations: our sync in-process and as a fresh CLI process, `prefect deploy --all`."""

from __future__ import annotations

import contextlib
import cProfile
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent


async def our_sync(
    settings: Any, database_url: str, profile: cProfile.Profile | None
) -> tuple[float, Any]:
    from automates.sync import sync

    if profile is not None:
        profile.enable()
    started = time.perf_counter()
    report = await sync(settings, database_url)
    seconds = time.perf_counter() - started
    if profile is not None:
        profile.disable()
    return seconds, report


def prefect_deploy(settings: Any, project: Path, log: Path) -> float:
    from automates.platform import components

    env = components.prefect_env(settings)
    env.pop("PREFECT_PROFILE", None)
    argv = [str(VENV_BIN / "prefect"), "--no-prompt", "deploy", "--all"]
    seconds, completed = run_timed(argv, project, env, log)
    if completed.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"prefect deploy --all exited {completed.returncode}:\n{tail}")
    return seconds


def run_timed(
    argv: list[str], cwd: Path, env: dict[str, str], log: Path | None = None
) -> tuple[float, subprocess.CompletedProcess[Any]]:
    """Run `argv` to its exit with no stdin: its wall seconds and its result. Its output is
    captured as text, or with `log` written to that file (stdout and stderr together)."""
    started = time.perf_counter()
    with log.open("wb") if log else contextlib.nullcontext() as out:
        output: dict[str, Any] = (
            {"stdout": out, "stderr": subprocess.STDOUT}
            if log
            else {"capture_output": True, "text": True}
        )
        completed = subprocess.run(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, check=False, **output
        )
    return time.perf_counter() - started, completed


def cli_sync(settings: Any, project: Path) -> tuple[float, dict[str, Any]]:
    """`automates sync --json` in a fresh process, configured by AUTOMATES_* variables only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMATES_", "PREFECT_"))}
    env.update(
        AUTOMATES_PROJECT_ROOT=str(settings.project_root),
        AUTOMATES_DATA_DIR=str(settings.data_path),
        AUTOMATES_SERVER_PORT=str(settings.server.port),
        AUTOMATES_WORK_POOL=settings.work_pool,
        PREFECT_HOME=str(settings.data_path / "prefect"),
    )
    seconds, completed = run_timed([str(VENV_BIN / "automates"), "sync", "--json"], project, env)
    if completed.returncode != 0:
        raise RuntimeError(
            f"automates sync --json exited {completed.returncode}:\n"
            f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}"
        )
    return seconds, json.loads(completed.stdout)
