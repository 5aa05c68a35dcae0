"""A misspelt AUTOMATES_* variable stops every command, naming it and what it likely meant."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from automates.cli.app import app
from automates.settings import OTHER_VARIABLES, unknown_variables


def test_each_unknown_variable_is_named_with_its_likely_setting() -> None:
    environ = {
        "AUTOMATES_DATABSE_URL": "postgresql://db/prod",
        "AUTOMATES_SERVER_PORT": "4201",  # a setting
        "AUTOMATES_FROBNICATE": "1",  # close to nothing
        "PATH": "/usr/bin",  # not ours
        **dict.fromkeys(OTHER_VARIABLES, "x"),  # ours, read elsewhere
    }
    assert unknown_variables(environ) == [
        "AUTOMATES_DATABSE_URL is not a setting (did you mean AUTOMATES_DATABASE_URL?)",
        "AUTOMATES_FROBNICATE is not a setting",
    ]


@pytest.mark.parametrize("args", [["list"], ["sync"], ["browser", "list"]])
def test_a_command_refuses_to_run_and_changes_nothing(args: list[str]) -> None:
    done = CliRunner().invoke(app, [*args, "--json"], env={"AUTOMATES_WORK_POOOL": "prod"})
    assert done.exit_code == 2, (done.stdout, done.stderr)
    assert json.loads(done.stdout)["error"].startswith(
        "unknown settings: AUTOMATES_WORK_POOOL is not a setting "
        "(did you mean AUTOMATES_WORK_POOL?). Nothing was done"
    )
