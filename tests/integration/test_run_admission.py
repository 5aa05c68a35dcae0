"""No trigger path can make a worker run a command nobody declared (issue 12, finding 1).

Before: a script automate's command was a run parameter (`argv`), and a run's job variables
could replace the worker's command, so `automates trigger NAME --param argv=[...]`, the
webhook, `prefect deployment run --param`, or any API caller ran what it liked as the worker's
user. Each path is tried here against a real server, a real worker and a real webhook; the
proof is a file the hostile command would write, which must never appear.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.objects import FlowRun
from pydantic import SecretStr

from automates.platform import components
from automates.server.client import prefect_client
from automates.settings import Settings
from automates.settings.groups import WebhookSettings
from automates.sync import sync
from tests.conftest import free_port
from tests.fixtures.commands import run_module
from tests.fixtures.projects import Project, script
from tests.fixtures.servers import cli_env, final_run, layer_settings, runs_of, wait_for

DEPLOYMENT = "script/greeter"


@pytest.fixture
def target(
    server: Settings, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """A script automate open to the webhook, synced; a worker started from an environment
    that holds secrets, as `automates up` after loading an operator's `.env` would be."""
    monkeypatch.setenv("OPERATOR_CLOUD_KEY", "cloud-key-that-runs-must-not-see")
    token = "webhook-token-that-runs-must-not-see"
    monkeypatch.setenv("AUTOMATES_WEBHOOK_TOKEN", token)
    pool = f"pool-{os.urandom(3).hex()}"
    settings = project.declare_and_sync(
        server,
        script("greeter", ["scripts/greet.sh"], webhook=True, work_pool=pool),
        script("show-env", ["env"], work_pool=pool),
        work_pool=pool,
        # The webhook reads its token from that environment; a group given here is not merged
        # with it, so the token is given again for the test's own requests.
        webhook=WebhookSettings(port=free_port(), token=SecretStr(token)),
    )
    components.start_worker(layer_settings(settings, work_pool=pool), pool)
    assert components.start_webhook(settings)
    yield settings
    components.webhook(settings).stop()
    components.worker(settings, pool).stop()


def hostile_argv(pwned: Path) -> list[str]:
    return ["/bin/sh", "-c", f"id > {pwned}"]


async def _deployment_id(settings: Settings) -> str:
    async with prefect_client(settings.api_url) as client:
        return str((await client.read_deployment_by_name(DEPLOYMENT)).id)


def create_run(settings: Settings, body: dict[str, Any]) -> FlowRun:
    """POST /api/deployments/{id}/create_flow_run as any API caller may."""
    deployment = asyncio.run(_deployment_id(settings))
    answer = httpx.post(f"{settings.api_url}/deployments/{deployment}/create_flow_run", json=body)
    assert answer.status_code == 201, answer.text
    return FlowRun.model_validate(answer.json())


def ended(settings: Settings, run: FlowRun) -> FlowRun:
    return wait_for(lambda: final_run(settings, run.id), 120, f"run {run.id} to end")


def logs_of(settings: Settings, run: FlowRun) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read() -> str:
        async with prefect_client(settings.api_url) as client:
            logs = await client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200
            )
        return "\n".join(log.message for log in logs)

    return asyncio.run(read())


def assert_refused(settings: Settings, run: FlowRun, why: str) -> None:
    done = ended(settings, run)
    assert done.state is not None
    assert (done.state.type.value, done.state.name) == ("FAILED", "Refused"), done.state
    assert why in (done.state.message or ""), done.state.message


def test_no_trigger_path_runs_an_undeclared_command(target: Settings, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned.txt"
    argv = json.dumps(hostile_argv(pwned))
    env = cli_env(target)

    # `automates trigger` refuses the parameter and starts nothing.
    done = run_module("automates.cli", "trigger", "greeter", "--param", f"argv={argv}", env=env)
    assert done.returncode != 0
    assert "argv" in done.stderr + done.stdout and "no such parameter" in done.stderr + done.stdout

    # The webhook refuses it too.
    assert target.webhook.token is not None
    token = target.webhook.token.get_secret_value()
    answer = httpx.post(
        f"http://{target.webhook.host}:{target.webhook.port}/automates/greeter/runs",
        headers={"Authorization": f"Bearer {token}"},
        json={"argv": hostile_argv(pwned)},
    )
    assert answer.status_code == 422, answer.text

    # Prefect's own CLI: the server enforces the deployment's closed schema.
    done = run_module(
        "prefect",
        "deployment",
        "run",
        DEPLOYMENT,
        "--param",
        f"argv={argv}",
        env={**env, "PREFECT_API_URL": target.api_url},
    )
    assert done.returncode != 0, done.stdout
    assert runs_of(target, DEPLOYMENT) == []

    # A raw API caller who turns the schema check off: the worker refuses the run.
    unchecked = create_run(
        target, {"parameters": {"argv": hostile_argv(pwned)}, "enforce_parameter_schema": False}
    )
    # One who replaces the worker's command through the run's job variables.
    commanded = create_run(target, {"job_variables": {"command": f"sh -c 'id > {pwned}'"}})
    # One who adds environment to the run (e.g. to turn the guard off).
    unguarded = create_run(target, {"job_variables": {"env": {"AUTOMATES_GUARD": "{}"}}})
    assert_refused(target, unchecked, "parameter(s) argv are not declared")
    assert_refused(target, commanded, "overrides job variables (command)")
    assert_refused(target, unguarded, "overrides job variables (env.AUTOMATES_GUARD)")

    # A run whose job variables are changed after it was created (PATCH /flow_runs/{id}).
    # It is made for an hour ahead (no worker fetches it yet), patched, then made due.
    async def patched() -> FlowRun:
        from datetime import UTC, datetime, timedelta

        from prefect.states import Scheduled

        async with prefect_client(target.api_url) as client:
            deployment = await client.read_deployment_by_name(DEPLOYMENT)
            later = datetime.now(UTC) + timedelta(hours=1)
            run = await client.create_flow_run_from_deployment(
                deployment.id, state=Scheduled(scheduled_time=later)
            )
            await client.update_flow_run(run.id, job_variables={"command": f"touch {pwned}"})
            await client.set_flow_run_state(
                run.id, Scheduled(scheduled_time=datetime.now(UTC)), force=True
            )
            return run

    assert_refused(target, asyncio.run(patched()), "overrides job variables (command)")

    # A deployment whose job variables someone changed on the server: refused until sync.
    async def tamper() -> None:
        async with prefect_client(target.api_url) as client:
            deployment = await client.read_deployment_by_name(DEPLOYMENT)
            variables = {**deployment.job_variables, "command": f"touch {pwned}"}
            await client.update_deployment(deployment.id, DeploymentUpdate(job_variables=variables))

    asyncio.run(tamper())
    tampered = create_run(target, {})
    assert_refused(target, tampered, "job variables that `automates sync` did not write")
    # The worker's log line reaches the run's log too (sent in batches: wait for it).
    wait_for(lambda: "refused" in logs_of(target, tampered), 30, "the refusal in the run's log")

    # Synced again, the declared command runs as declared.
    asyncio.run(sync(target, target.database_url or ""))
    plain = ended(target, create_run(target, {}))
    assert plain.state is not None and plain.state.is_completed(), plain.state
    assert not pwned.exists()


def test_a_run_sees_no_operator_secret(target: Settings) -> None:
    run = ended(target, create_run_of(target, "script/show-env"))
    assert run.state is not None and run.state.is_completed(), run.state
    # It printed its environment (its log lines arrive in batches: wait for the last one).
    printed = wait_for(
        lambda: (lambda text: text if "AUTOMATES_GUARD=" in text else None)(logs_of(target, run)),
        30,
        "the script's output in the run's log",
    )
    assert "PATH=" in printed
    for secret in ("cloud-key-that-runs-must-not-see", "webhook-token-that-runs-must-not-see"):
        assert secret not in printed
    assert "AUTOMATES_DATABASE_URL" not in printed


def create_run_of(settings: Settings, full_name: str) -> FlowRun:
    async def go() -> FlowRun:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name(full_name)
            return await client.create_flow_run_from_deployment(deployment.id)

    return asyncio.run(go())
