"""The residential worker's start: the gate and the credential, never the server's secrets."""

from __future__ import annotations

import pytest

from workers.residential import residential_env

GOOD = {"AUTOMATES_GATE_URL": "https://gate.example.org/", "AUTOMATES_GATE_WORKER_TOKEN": "t" * 24}


def test_prefect_is_pointed_at_the_gate_with_the_worker_credential() -> None:
    env = residential_env({**GOOD, "AUTOMATES_BROWSER_HOST": "home"})
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
    ],
)
def test_a_bad_or_overprivileged_env_is_refused(change: dict[str, str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        residential_env({**GOOD, **change})
