"""The settings root in groups: each variable keeps its name, lands in its group, travels to
child processes, is refused by its name, and is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from automates.cli.app import app
from automates.settings import GROUPS, Settings, unknown_variables, variables
from automates.settings.groups import GateSettings, TaskRunSettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_a_grouped_variable_sets_its_group_and_a_root_one_the_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTOMATES_GATE_WORKER_TOKEN", "t" * 20)
    monkeypatch.setenv("AUTOMATES_TASK_RUN_TIMEOUT_SECONDS", "60")  # a group of two words
    monkeypatch.setenv("AUTOMATES_LLM_AGENT_MODELS", '{"scout": "claude-haiku-4-5"}')
    monkeypatch.setenv("AUTOMATES_RUN_PENDING_GRACE_SECONDS", "45")  # not task_run's
    settings = Settings()
    assert settings.gate.worker_token == SecretStr("t" * 20)
    assert settings.task_run.timeout_seconds == 60
    assert settings.llm.agent_models == {"scout": "claude-haiku-4-5"}
    assert settings.run_pending_grace_seconds == 45
    assert settings.gate.port == 4300 and settings.task_run.stuck_seconds == 900  # defaults


def test_a_group_given_in_code_keeps_the_environment_for_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTOMATES_GATE_HOST", "10.0.0.7")
    given = Settings(gate={"port": 4301})  # type: ignore[arg-type]  # a dict merges
    assert (given.gate.host, given.gate.port) == ("10.0.0.7", 4301)
    replaced = Settings(gate=GateSettings(port=4302))  # a model replaces the group
    assert (replaced.gate.host, replaced.gate.port) == ("127.0.0.1", 4302)


def test_grouped_settings_travel_to_child_processes_by_their_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = Settings(
        gate=GateSettings(worker_token=SecretStr("w" * 16)),
        task_run=TaskRunSettings(timeout_seconds=61, max_budget_usd=0.5),
        work_pool="elsewhere",
    )
    exported = given.as_env()
    assert exported == {
        "AUTOMATES_GATE_WORKER_TOKEN": "w" * 16,
        "AUTOMATES_TASK_RUN_MAX_BUDGET_USD": "0.5",
        "AUTOMATES_TASK_RUN_TIMEOUT_SECONDS": "61",
        "AUTOMATES_WORK_POOL": "elsewhere",
    }
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    assert Settings() == given


def test_every_variable_is_known_and_a_misspelt_grouped_one_is_not() -> None:
    known = dict.fromkeys(variables(), "1")
    assert unknown_variables(known) == []
    assert unknown_variables({"AUTOMATES_GATE_PROT": "1"}) == [
        "AUTOMATES_GATE_PROT is not a setting (did you mean AUTOMATES_GATE_PORT?)"
    ]
    assert {"gate", "webhook", "browser", "llm", "agent", "task_run", "alert"} <= set(GROUPS)


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"AUTOMATES_GATE_PORT": "0"}, "AUTOMATES_GATE_PORT: Input should be greater than"),
        ({"AUTOMATES_LLM_AGENT_MODELS": "{scout"}, "AUTOMATES_LLM_AGENT_MODELS: not valid JSON"),
        ({"AUTOMATES_AGENT_BUDGETS_USD": '{"scout": "lots"}'}, "AUTOMATES_AGENT_BUDGETS_USD (key"),
    ],
)
def test_a_bad_grouped_value_is_refused_by_its_variable_without_its_value(
    environ: dict[str, str], said: str
) -> None:
    done = CliRunner().invoke(app, ["list", "--json"], env=environ)
    assert done.exit_code == 2, (done.stdout, done.stderr)
    error = json.loads(done.stdout)["error"]
    assert error.startswith("invalid settings: ") and said in error, error
    for value in environ.values():
        assert value not in error


def test_every_variable_is_documented() -> None:
    documented = set(re.findall(r"`(AUTOMATES_[A-Z_]+)`", DOCS.read_text()))
    assert set(variables()) - documented == set()
