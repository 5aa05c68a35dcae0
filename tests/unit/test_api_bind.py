"""An API reachable beyond loopback needs Prefect's basic auth: whoever reaches the API reads
the store block's password (docs/decisions/0030-who-reads-the-store-secret.md)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from automates.platform.components import loopback
from tests.conftest import free_port
from tests.fixtures.commands import run_module


def up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_module("automates.cli", "up", "--json", env={**os.environ, **env})


@pytest.mark.parametrize(
    ("auth", "named"),
    [
        ({}, "set PREFECT_SERVER_API_AUTH_STRING"),
        (
            {"PREFECT_SERVER_API_AUTH_STRING": "admin:s3cret-pass"},
            "PREFECT_SERVER_API_AUTH_STRING is set but PREFECT_API_AUTH_STRING is not, or differs",
        ),
    ],
    ids=["no-auth", "server-auth-only"],
)
def test_up_refuses_a_server_beyond_loopback_without_auth_and_starts_nothing(
    auth: dict[str, str], named: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = {
        **auth,
        "AUTOMATES_DATA_DIR": str(data),
        "AUTOMATES_SERVER_HOST": "0.0.0.0",
        "AUTOMATES_SERVER_PORT": str(free_port()),
    }
    env.pop("PREFECT_API_AUTH_STRING", None)
    done = up(env)
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert named in error and "Nothing was started" in error
    assert "s3cret-pass" not in done.stdout + done.stderr
    assert not data.exists()  # no embedded PostgreSQL, no server, no pid file


@pytest.mark.parametrize(
    ("host", "only_here"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("automates.internal", False),  # a name may resolve anywhere
    ],
)
def test_only_a_loopback_address_counts_as_loopback(host: str, only_here: bool) -> None:
    assert loopback(host) is only_here
