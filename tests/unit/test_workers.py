from __future__ import annotations

import os
import sys

from automates.platform.worker_command import worker_argv
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
