from __future__ import annotations

import os
import subprocess
import sys

from automates.platform.worker_command import worker_argv
from tests.conftest import REPO
from tests.fixtures.commands import run_module


def test_worker_command_line_names_pool_and_host() -> None:
    argv = worker_argv("residential", name="home-box", limit=2)
    assert argv[0] == sys.executable
    assert argv[1:] == [
        "-m", "workers.process", "--pool", "residential", "--name", "home-box", "--limit", "2"
    ]  # fmt: skip


def test_a_remote_worker_refuses_to_start_without_a_server_url() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = run_module("workers.process", "--pool", "x", env=env)
    assert done.returncode == 2
    assert "PREFECT_API_URL (or AUTOMATES_PREFECT_API_URL) must point at the server" in done.stderr


# Runs the worker's main up to its start, then reports the worker's type and poll interval.
WORKER_SETTINGS = """
import workers.process as worker

def report(coroutine):
    from prefect.settings import PREFECT_WORKER_QUERY_SECONDS

    owner = coroutine.cr_frame.f_locals["self"]
    coroutine.close()
    print(type(owner).__name__, PREFECT_WORKER_QUERY_SECONDS.value())

worker.asyncio.run = report
worker.main(["--pool", "x"])
"""


def test_the_fast_worker_polls_every_5_s_unless_the_operator_says_otherwise() -> None:
    """The fallback poll reaches Prefect's settings: set before anything imports Prefect."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "PREFECT_WORKER_QUERY_SECONDS"},
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
    }
    done = subprocess.run(
        [sys.executable, "-c", WORKER_SETTINGS], env=env, capture_output=True, text=True,
        timeout=120, check=False, cwd=REPO,
    )  # fmt: skip
    assert done.stdout.split() == ["FastProcessWorker", "5.0"], done.stderr
    own = subprocess.run(
        [sys.executable, "-c", WORKER_SETTINGS], env={**env, "PREFECT_WORKER_QUERY_SECONDS": "7"},
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )  # fmt: skip
    assert own.stdout.split() == ["FastProcessWorker", "7.0"], own.stderr


def test_prefect_settings_are_written_out_for_runs_once_per_settings_object() -> None:
    from prefect.settings import (
        PREFECT_CLIENT_MAX_RETRIES,
        get_current_settings,
        temporary_settings,
    )

    from automates.platform.process_worker import CleanJobConfiguration, SettingsEnvironment

    settings = get_current_settings()
    expected = settings.to_environment_variables(exclude_unset=True)
    written = SettingsEnvironment()
    first = written.of(settings)
    assert first == expected
    first["PREFECT_X"] = "changed by one caller"
    assert written.of(settings) == expected  # every caller has its own copy
    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 9}):  # a new settings object
        assert written.of(get_current_settings())["PREFECT_CLIENT_MAX_RETRIES"] == "9"
        assert CleanJobConfiguration._base_environment()["PREFECT_CLIENT_MAX_RETRIES"] == "9"
    assert written.of(get_current_settings()) == expected
    assert CleanJobConfiguration._base_environment() == expected
