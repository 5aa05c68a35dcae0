"""The run launcher with real processes: a launcher that imported Prefect and a project's
packages forks one process per run, with the run's environment only, and never runs code
older than the project's files (automates/platform/launcher.py, run_launcher.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from automates.platform.launcher import Launcher, Refused, launchable

PROBE = """
import json, os, sys, time
from pathlib import Path

from probe_lib.version import VERSION

record = {
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "cwd": os.getcwd(),
    "version": VERSION,
    "env": {k: v for k, v in os.environ.items() if k.startswith("PROBE_")},
    "launcher_only": os.environ.get("LAUNCHER_ONLY"),
}
Path(os.environ["PROBE_OUT"]).write_text(json.dumps(record))
time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
sys.exit(int(os.environ.get("PROBE_EXIT", "0")))
"""


SETTINGS_PROBE = """
import json, os
from pathlib import Path

from prefect.settings import get_current_settings

settings = get_current_settings()
record = {"api_url": settings.api.url, "retries": settings.client.max_retries}
Path(os.environ["PROBE_OUT"]).write_text(json.dumps(record))
"""


MODELS_PROBE = """
import json, os
from pathlib import Path

from prefect.client.schemas.objects import FlowRun, WorkPool, WorkQueue
from prefect.client.schemas.responses import DeploymentResponse
from prefect.events import Event

models = (FlowRun, DeploymentResponse, WorkPool, WorkQueue, Event)
record = {model.__name__: model.__pydantic_complete__ for model in models}
Path(os.environ["PROBE_OUT"]).write_text(json.dumps(record))
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A project (first on the path: the launcher starts in it) whose `tasks/probe.py`, run as
    `python -m tasks.probe`, imports a library of the project, `probe_lib`: the launcher
    imports the library ahead (never the task itself, which would write its record)."""
    root = tmp_path / "checkout"
    for package in ("tasks", "probe_lib"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "probe_lib" / "version.py").write_text('VERSION = "first"\n')
    (root / "tasks" / "probe.py").write_text(PROBE)
    (root / "tasks" / "settings_probe.py").write_text(SETTINGS_PROBE)
    (root / "tasks" / "models_probe.py").write_text(MODELS_PROBE)
    return root


# The launcher's own Prefect settings, which a run's differ from or not.
LAUNCHER_API = "http://launcher.invalid/api"


@asynccontextmanager
async def running(checkout: Path) -> AsyncIterator[Launcher]:
    """A launcher kept running for the block, ready when the block starts."""
    environment = {
        **os.environ,
        "LAUNCHER_ONLY": "the launcher's own",
        "PREFECT_API_URL": LAUNCHER_API,
    }
    launcher = Launcher(checkout, environment)
    keeping = asyncio.create_task(launcher.keep_running())
    assert await launcher.wait_ready(120), "the launcher never said it was ready"
    yield launcher
    await launcher.close()
    keeping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await keeping


def with_launcher(
    checkout: Path, scenario: Callable[[Launcher], Coroutine[Any, Any, None]]
) -> None:
    async def main() -> None:
        async with running(checkout) as launcher:
            await scenario(launcher)

    asyncio.run(main())


def run_env(out: Path, **variables: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PROBE_OUT": str(out), **variables}


def read(out: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(out.read_text())
    return record


async def until(condition: Callable[[], bool], timeout: float = 120) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


ARGV = [sys.executable, "-m", "tasks.probe"]


def test_each_run_is_a_process_of_its_own_with_only_its_environment(
    checkout: Path, tmp_path: Path
) -> None:
    with_launcher(checkout, lambda launcher: own_processes(launcher, checkout, tmp_path))


async def own_processes(launcher: Launcher, checkout: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    first = await launcher.launch(ARGV, run_env(a, PROBE_A="1"), checkout, quiet=True)
    second = await launcher.launch(
        ARGV, run_env(b, PROBE_B="2", PROBE_EXIT="3"), checkout, quiet=True
    )
    assert (await first.wait(), await second.wait()) == (0, 3)
    one, two = read(a), read(b)
    assert first.pid == one["pid"] != two["pid"] == second.pid
    assert one["ppid"] == two["ppid"] == launcher.pid
    assert one["env"] == {"PROBE_A": "1", "PROBE_OUT": str(a)}
    assert two["env"] == {"PROBE_B": "2", "PROBE_EXIT": "3", "PROBE_OUT": str(b)}
    assert one["launcher_only"] is None and two["launcher_only"] is None
    assert one["cwd"] == two["cwd"] == str(checkout)


def test_a_run_has_the_prefect_settings_of_its_own_environment_and_folder(
    checkout: Path, tmp_path: Path
) -> None:
    with_launcher(checkout, lambda launcher: own_settings(launcher, checkout, tmp_path))


async def own_settings(launcher: Launcher, checkout: Path, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "tasks.settings_probe"]
    prefect = {
        name: value for name, value in os.environ.items() if name.upper().startswith("PREFECT_")
    }
    same = {**prefect, "HOME": os.environ.get("HOME", ""), "PREFECT_API_URL": LAUNCHER_API}

    async def settings_of(env: dict[str, str]) -> dict[str, Any]:
        out = tmp_path / "settings.json"
        out.unlink(missing_ok=True)
        launched = await launcher.launch(argv, run_env(out, **env), checkout, quiet=True)
        assert await launched.wait() == 0
        return read(out)

    # The launcher's inputs: its settings, kept (not built again) and right.
    default_retries = (await settings_of(same))["retries"]
    assert (await settings_of(same))["api_url"] == LAUNCHER_API
    # A variable of the run's own.
    assert (await settings_of({**same, "PREFECT_API_URL": "http://run.invalid/api"}))[
        "api_url"
    ] == "http://run.invalid/api"
    # A file of the folder, written after the launcher built its settings.
    (checkout / ".env").write_text(f"PREFECT_CLIENT_MAX_RETRIES={default_retries + 2}\n")
    assert (await settings_of(same))["retries"] == default_retries + 2
    (checkout / ".env").unlink()
    assert (await settings_of(same))["retries"] == default_retries


def test_a_run_finds_the_api_models_its_engine_reads_already_built(
    checkout: Path, tmp_path: Path
) -> None:
    async def scenario(launcher: Launcher) -> None:
        out = tmp_path / "models.json"
        argv = [sys.executable, "-m", "tasks.models_probe"]
        launched = await launcher.launch(argv, run_env(out), checkout, quiet=True)
        assert await launched.wait() == 0
        # Built in the launcher, not again by each run's first read of the API.
        assert read(out) == dict.fromkeys(
            ("FlowRun", "DeploymentResponse", "WorkPool", "WorkQueue", "Event"), True
        )

    with_launcher(checkout, scenario)


def test_a_changed_project_file_is_never_run_from_the_old_import(
    checkout: Path, tmp_path: Path
) -> None:
    with_launcher(checkout, lambda launcher: stale_code(launcher, checkout, tmp_path))


async def stale_code(launcher: Launcher, checkout: Path, tmp_path: Path) -> None:
    old = launcher.pid
    version = checkout / "probe_lib" / "version.py"
    version.write_text('VERSION = "second"\n')
    os.utime(version, ns=(version.stat().st_atime_ns, version.stat().st_mtime_ns + 10**9))
    with pytest.raises(Refused, match="changed since"):
        await launcher.launch(ARGV, run_env(tmp_path / "x.json"), checkout, quiet=True)
    # The stale launcher is replaced by one that imports the new code.
    await until(lambda: launcher.ready and launcher.pid not in (None, old))
    out = tmp_path / "new.json"
    launched = await launcher.launch(ARGV, run_env(out), checkout, quiet=True)
    assert await launched.wait() == 0
    assert read(out)["version"] == "second"


def test_a_killed_launcher_is_replaced_and_its_runs_are_still_watched(
    checkout: Path, tmp_path: Path
) -> None:
    with_launcher(checkout, lambda launcher: killed_launcher(launcher, checkout, tmp_path))


async def killed_launcher(launcher: Launcher, checkout: Path, tmp_path: Path) -> None:
    out = tmp_path / "long.json"
    long = await launcher.launch(ARGV, run_env(out, PROBE_SLEEP="600"), checkout, quiet=True)
    await until(out.exists, 30)
    old = launcher.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    await until(lambda: launcher.ready and launcher.pid not in (None, old))
    assert launcher.starts == 2
    # The run outlived its launcher; its end is still seen (its status died with its parent).
    os.kill(long.pid, signal.SIGTERM)
    assert await asyncio.wait_for(long.wait(), 30) == -1


def test_only_this_interpreter_running_a_module_is_launchable() -> None:
    path = {"PATH": str(Path(sys.executable).parent)}
    assert launchable(["python", "-m", "automates.guard.engine"], path)
    assert launchable([sys.executable, "-m", "prefect.engine"], {})
    assert not launchable(["python", "flows/x.py"], path)  # not a module
    assert not launchable(["python", "-m"], path)
    assert not launchable(["/bin/sh", "-m", "x"], path)  # not this interpreter
