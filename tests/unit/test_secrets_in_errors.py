"""An error never echoes a secret: a refused setting is named, its value is not.

Through the real CLI, as an operator meets it: a subprocess, text and --json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from automates.cli.output import masked
from tests.conftest import REPO, free_port
from tests.fixtures.commands import run_module

SECRET = "Sup3rS3cretPw"
TOKEN = "tok3n-" + SECRET  # 16 characters or more, as the tokens must be


def automates(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # One line per message: a secret wrapped across two lines would pass unseen.
    return run_module("automates.cli", *args, env={**os.environ, "COLUMNS": "1000", **env})


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AUTOMATES_DATABASE_URL": f"mysql://u:{SECRET}@h/db"}, "AUTOMATES_DATABASE_URL"),
        (
            {"AUTOMATES_DATABASE_URL": f"postgresql://u:{SECRET}@h:port/db"},
            "AUTOMATES_DATABASE_URL",
        ),
        (
            {"AUTOMATES_AGENT_BUDGETS_USD": json.dumps({"scout": SECRET})},
            "AUTOMATES_AGENT_BUDGETS_USD",
        ),
        ({"AUTOMATES_INSTALLABLE_MODULES": "{" + SECRET}, "AUTOMATES_INSTALLABLE_MODULES"),
        (  # another setting is refused while the secret-bearing ones are set
            {
                "AUTOMATES_SERVER_PORT": "0",
                "AUTOMATES_DATABASE_URL": f"postgresql://u:{SECRET}@h/db",
                "AUTOMATES_WEBHOOK_TOKEN": TOKEN,
                "AUTOMATES_GATE_WORKER_TOKEN": TOKEN,
                "AUTOMATES_BROWSER_PROXY": f"socks5://bob:{SECRET}@proxy:1080",
            },
            "AUTOMATES_SERVER_PORT",
        ),
    ],
    ids=["database-url-scheme", "database-url-port", "mapping-entry", "json", "other-setting"],
)
def test_a_refused_setting_is_named_without_its_value(
    env: dict[str, str], named: str, tmp_path: Path
) -> None:
    env = {**env, "AUTOMATES_DATA_DIR": str(tmp_path)}
    text = automates(env, "status")
    assert text.returncode == 2, text.stdout + text.stderr
    assert f"invalid settings: {named}" in text.stderr
    assert SECRET not in text.stdout + text.stderr
    assert "input_value" not in text.stderr

    as_json = automates(env, "status", "--json")
    assert as_json.returncode == 2, as_json.stdout + as_json.stderr
    error = json.loads(as_json.stdout)["error"]
    assert error.startswith(f"invalid settings: {named}")
    assert SECRET not in as_json.stdout + as_json.stderr


def test_an_unreachable_store_is_named_without_its_password(tmp_path: Path) -> None:
    env = {
        "AUTOMATES_DATA_DIR": str(tmp_path),
        "AUTOMATES_DATABASE_URL": f"postgresql://automates:{SECRET}@127.0.0.1:{free_port()}/db",
        "AUTOMATES_PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
    }
    for args in (["sync"], ["sync", "--json"]):
        done = automates(env, *args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "cannot reach the store at postgresql+psycopg://automates:***@127.0.0.1" in (
            done.stdout + done.stderr
        )
        assert SECRET not in done.stdout + done.stderr


def test_every_message_is_masked_at_the_cli_boundary() -> None:
    environ = {
        "AUTOMATES_WEBHOOK_TOKEN": TOKEN,
        "PREFECT_API_AUTH_STRING": f"admin:{SECRET}",
        "AUTOMATES_DATABASE_URL": "postgresql://u:p%40ss-word@h/db",
    }
    message = (
        f"refused mysql://u:{SECRET}@h/db; token {TOKEN}; auth admin:{SECRET}; "
        "body {'password': 'p@ss-word'}; plain http://h:1/api"
    )
    assert masked(message, environ) == (
        "refused mysql://u:***@h/db; token ***; auth ***; body {'password': '***'}; "
        "plain http://h:1/api"
    )


# `automates validate` meeting an error no module translates (a bug), through the real entry
# point: the command's own code raises what a library might.
BUG = f"""
import sys
from automates.cli import registry_cmds

def bug():
    raise RuntimeError("postgresql://u:{SECRET}@h/db answered nonsense")

registry_cmds.load_settings = bug
sys.argv = ["automates", "validate", *sys.argv[1:]]
from automates.cli.app import main
main()
"""


@pytest.mark.parametrize("as_json", [False, True])
def test_an_unexpected_error_is_one_masked_line_and_exit_2(as_json: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BUG, *(["--json"] if as_json else [])],
        env={**os.environ, "COLUMNS": "1000"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr  # never 1: that says "ran, and found something"
    assert SECRET not in done.stdout + done.stderr
    # The traceback for the bug report, then what happened, on the last line.
    assert "Traceback (most recent call last)" in done.stderr
    *_, last = done.stderr.strip().splitlines()
    assert last == (
        "error: unexpected RuntimeError: postgresql://u:***@h/db answered nonsense "
        "(a bug in automates: the traceback above says where; report it)"
    )
    if as_json:
        assert json.loads(done.stdout) == {
            "error": "unexpected RuntimeError: postgresql://u:***@h/db answered nonsense"
        }
    else:
        assert done.stdout == ""
