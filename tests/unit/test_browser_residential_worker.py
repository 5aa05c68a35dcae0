"""The residential worker's start: the gate and the credential, never the server's secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from automates.settings import Settings
from workers.residential import residential_env

GOOD = {"AUTOMATES_GATE_URL": "https://gate.example.org/", "AUTOMATES_GATE_WORKER_TOKEN": "t" * 24}


def prepared(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, str]:
    """residential_env of `env`, with the settings read from it as the worker reads them."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return residential_env(Settings(), env)


def test_prefect_is_pointed_at_the_gate_with_the_worker_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = prepared(monkeypatch, {**GOOD, "AUTOMATES_BROWSER_HOST": "home"})
    assert env["PREFECT_API_URL"] == "https://gate.example.org/api"
    assert env["PREFECT_API_KEY"] == "t" * 24
    assert env["AUTOMATES_BROWSER_HOST"] == "home"
    assert "AUTOMATES_GATE_WORKER_TOKEN" not in env


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AUTOMATES_GATE_URL": ""}, "AUTOMATES_GATE_URL"),
        ({"AUTOMATES_GATE_URL": "gate:4300"}, "AUTOMATES_GATE_URL"),
        ({"AUTOMATES_GATE_WORKER_TOKEN": "short"}, "AUTOMATES_GATE_WORKER_TOKEN"),
        ({"AUTOMATES_DATABASE_URL": "postgresql://x"}, "server secrets"),
        ({"AUTOMATES_BROWSER_PAYLOAD_KEY": "k" * 44}, "AUTOMATES_BROWSER_PAYLOAD_KEY"),
    ],
)
def test_a_bad_or_overprivileged_env_is_refused(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, str], message: str
) -> None:
    with pytest.raises(SystemExit, match=message):
        prepared(monkeypatch, {**GOOD, **change})


def test_the_browsers_at_once_are_two_unless_set_and_never_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().browser.worker_limit == 2
    monkeypatch.setenv("AUTOMATES_BROWSER_WORKER_LIMIT", "3")
    assert Settings().browser.worker_limit == 3
    monkeypatch.setenv("AUTOMATES_BROWSER_WORKER_LIMIT", "0")
    with pytest.raises(ValidationError, match=r"browser\.worker_limit"):
        Settings()
