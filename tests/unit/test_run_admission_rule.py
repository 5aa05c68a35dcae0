"""The admission rule every worker of the layer applies before it starts a run."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from automates.guard.policy import GUARD_COMMAND, GUARD_ENV
from automates.platform.admission import BROWSER_TAG, MAX_PARAMETER_BYTES, refusal
from automates.platform.run_env import passed_on, run_environment, without_secrets
from automates.registry.model import MANAGED_TAG
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
    browser = deployment(tags=[BROWSER_TAG], job_variables={})
    assert refusal(browser, run()) is None


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
        (deployment(tags=[BROWSER_TAG]), run(), "carries job variables"),
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
        "PREFECT_API_DATABASE_CONNECTION_URL",
        "PREFECT_SERVER_API_AUTH_STRING",
    } & set(kept)
    assert not passed_on("HOSTILE") and passed_on("HOME")
