"""The timed operations: our sync in-process and as a fresh CLI process, `prefect deploy --all`."""

from __future__ import annotations

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
    started = time.perf_counter()
    with log.open("wb") as out:
        completed = subprocess.run(
            argv,
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"prefect deploy --all exited {completed.returncode}:\n{tail}")
    return seconds


def cli_sync(settings: Any, project: Path) -> tuple[float, dict[str, Any]]:
    """`automates sync --json` in a fresh process, configured by AUTOMATES_* variables only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMATES_", "PREFECT_"))}
    env.update(
        AUTOMATES_PROJECT_ROOT=str(settings.project_root),
        AUTOMATES_DATA_DIR=str(settings.data_path),
        AUTOMATES_SERVER_PORT=str(settings.server_port),
        AUTOMATES_WORK_POOL=settings.work_pool,
        PREFECT_HOME=str(settings.data_path / "prefect"),
    )
    started = time.perf_counter()
    completed = subprocess.run(
        [str(VENV_BIN / "automates"), "sync", "--json"],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(
            f"automates sync --json exited {completed.returncode}:\n"
            f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}"
        )
    return seconds, json.loads(completed.stdout)
