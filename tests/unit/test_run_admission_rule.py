"""The admission rule every worker of the layer applies before it starts a run."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from automates.browser.deploy import COMMAND as BROWSER_COMMAND
from automates.browser.deploy import TAG as BROWSER_TAG
from automates.platform.admission import MAX_PARAMETER_BYTES, refusal
from automates.platform.run_env import passed_on, run_environment, without_secrets
from automates.registry.model import MANAGED_TAG
from automates.registry.policy import GUARD_COMMAND, GUARD_ENV
from automates.server.spec import SET_WORKING_DIRECTORY

SCHEMA = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}, "count": {"type": "integer"}},
    "additionalProperties": False,
}
GUARD_VARIABLES = {"command": GUARD_COMMAND, "env": {GUARD_ENV: '{"automate":"a"}'}}


def deployment(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "name": "a",
        "tags": [MANAGED_TAG],
        "job_variables": GUARD_VARIABLES,
        "parameter_openapi_schema": SCHEMA,
        "pull_steps": [{SET_WORKING_DIRECTORY: {"directory": "/srv/checkout"}}],
    }
    return SimpleNamespace(**{**base, **fields})


def run(**fields: Any) -> Any:
    return SimpleNamespace(**{"job_variables": {}, "parameters": {}, **fields})


def test_a_declared_run_is_admitted() -> None:
    assert refusal(deployment(), run(parameters={"greeting": "hi", "count": 2})) is None
    # The UI may send the deployment's own values back: not an override.
    assert refusal(deployment(), run(job_variables=dict(GUARD_VARIABLES))) is None
    browser = deployment(tags=[BROWSER_TAG], job_variables={"command": BROWSER_COMMAND})
    assert refusal(browser, run()) is None
    # As `browser deploy` wrote it before it named the command: Prefect's engine too.
    assert refusal(deployment(tags=[BROWSER_TAG], job_variables={}), run()) is None


@pytest.mark.parametrize(
    ("the_deployment", "the_run", "why"),
    [
        (None, run(), "has no deployment"),
        (deployment(tags=["other"]), run(), "was not made by `automates sync`"),
        (deployment(), run(job_variables={"command": "id"}), "overrides job variables (command)"),
        (
            deployment(),
            run(job_variables={"env": {"AWS_SECRET": "x"}}),
            "overrides job variables (env.AWS_SECRET)",
        ),
        (
            deployment(),
            run(job_variables={"working_dir": "/tmp"}),
            "overrides job variables (working_dir)",
        ),
        (
            deployment(job_variables={**GUARD_VARIABLES, "command": "id"}),
            run(),
            "did not write",
        ),
        (
            deployment(job_variables={**GUARD_VARIABLES, "stream_output": False}),
            run(),
            "did not write",
        ),
        (deployment(tags=[BROWSER_TAG]), run(), "that `automates browser deploy` did not write"),
        (
            deployment(tags=[BROWSER_TAG], job_variables={"command": "sh -c id"}),
            run(),
            "that `automates browser deploy` did not write",
        ),
        (
            deployment(tags=[BROWSER_TAG], job_variables={"command": BROWSER_COMMAND}),
            run(job_variables={"command": "sh -c id"}),
            "overrides job variables (command)",
        ),
        (
            deployment(
                pull_steps=[
                    {"prefect.deployments.steps.git_clone": {"repository": "https://x/y"}},
                    {SET_WORKING_DIRECTORY: {"directory": "{{ clone.directory }}"}},
                ]
            ),
            run(),
            "pull steps that `automates sync` did not write",
        ),
        (
            deployment(
                pull_steps=[{"prefect.deployments.steps.run_shell_script": {"script": "id"}}]
            ),
            run(),
            "pull steps",
        ),
        (deployment(), run(parameters={"argv": ["/bin/sh"]}), "argv are not declared"),
        (deployment(), run(parameters={"count": "three"}), "parameter count"),
        (
            deployment(),
            run(parameters={"greeting": "x" * (MAX_PARAMETER_BYTES + 1)}),
            "at most 65536",
        ),
    ],
)
def test_an_undeclared_run_is_refused_with_the_reason(
    the_deployment: Any, the_run: Any, why: str
) -> None:
    reason = refusal(the_deployment, the_run)
    assert reason is not None and why in reason


def test_a_run_environment_keeps_the_basics_and_the_layers_settings_only() -> None:
    environ = {
        "PATH": "/usr/bin",
        "LC_ALL": "C.UTF-8",
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",
        "PREFECT_API_AUTH_STRING": "u:p",  # a client needs it to reach a protected API
        "PREFECT_API_DATABASE_CONNECTION_URL": "postgresql://u:secret@h/db",
        "PREFECT_SERVER_API_AUTH_STRING": "u:p",
        "AUTOMATES_ENVIRONMENT": "production",
        "AUTOMATES_DATABASE_URL": "postgresql://u:secret@h/db",
        "AUTOMATES_WEBHOOK_TOKEN": "t" * 20,
        "AUTOMATES_GATE_WORKER_TOKEN": "g" * 20,
        "AUTOMATES_BROWSER_PAYLOAD_KEY": "k" * 44,
        "AWS_SECRET_ACCESS_KEY": "aws",
        "ANTHROPIC_API_KEY": "sk-ant",
    }
    assert sorted(run_environment(environ)) == [
        "AUTOMATES_ENVIRONMENT",
        "LC_ALL",
        "PATH",
        "PREFECT_API_AUTH_STRING",
        "PREFECT_API_URL",
    ]
    kept = without_secrets(environ)  # the agent dispatcher: the operator's own keys stay
    assert "ANTHROPIC_API_KEY" in kept and "AWS_SECRET_ACCESS_KEY" in kept
    assert not {
        "AUTOMATES_DATABASE_URL",
        "AUTOMATES_WEBHOOK_TOKEN",
        "AUTOMATES_GATE_WORKER_TOKEN",
        "AUTOMATES_BROWSER_PAYLOAD_KEY",
        "PREFECT_API_DATABASE_CONNECTION_URL",
        "PREFECT_SERVER_API_AUTH_STRING",
    } & set(kept)
    assert not passed_on("HOSTILE") and passed_on("HOME")


class _FlakyApi:
    """A client whose deployment reads fail `failures` times (a busy API), then answer."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.reads = 0
        self.states: list[Any] = []

    async def read_deployment(self, deployment_id: Any) -> Any:
        self.reads += 1
        if self.reads <= self.failures:
            raise RuntimeError("500 Internal Server Error")
        return deployment()

    async def set_flow_run_state(self, flow_run_id: Any, state: Any, force: bool) -> None:
        self.states.append((state, force))


def test_a_busy_api_is_asked_again_and_a_run_it_cannot_read_goes_back_to_scheduled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    import logging

    from automates.platform import process_worker

    monkeypatch.setattr(process_worker, "READ_RETRY_SECONDS", (0.0, 0.0))
    flow_run = run(deployment_id="d", id="r", name="r")

    def worker(api: _FlakyApi) -> Any:
        return SimpleNamespace(client=api, get_flow_run_logger=lambda _: logging.getLogger("t"))

    recovers = _FlakyApi(failures=2)
    reason, read = asyncio.run(process_worker._refusal_of(worker(recovers), flow_run))
    assert reason is None and read is not None and read.name == "a"  # kept for its configuration
    assert recovers.reads == 3

    down = _FlakyApi(failures=10)
    with pytest.raises(RuntimeError):
        asyncio.run(process_worker._refusal_of(worker(down), flow_run))
    assert down.reads == 3
    asyncio.run(process_worker._put_back(worker(down), flow_run, RuntimeError("500")))
    [(state, force)] = down.states
    assert state.name == "Scheduled" and force and "admission: 500" in state.message
