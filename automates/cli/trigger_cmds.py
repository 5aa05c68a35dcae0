"""Triggers beyond time: `automates trigger NAME` (a manual run).

Event triggers need no command (sync writes them as Prefect automations), and the webhook is
its own process (`python -m automates.webhook`, started by `automates up`).
"""

from __future__ import annotations

import asyncio
import getpass
from typing import Any

import typer

from automates import principal
from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.errors import RunParametersError, UnknownAutomateError
from automates.guard.quiet_hours import OVERRIDE_TAG
from automates.registry.model import Kind
from automates.scheduling.services import ONCE
from automates.server.client import prefect_client
from automates.server.runs import (
    checked_parameters,
    managed_deployment,
    parameters_from_pairs,
    start_run,
)
from automates.settings import Settings
from automates.store.declared import declared_registry

app = typer.Typer()

MANUAL_TAG = "trigger:manual"
ParamOption = typer.Option(
    None, "--param", help="A flow parameter, NAME=VALUE (repeat it); checked before the run."
)


@app.command()
@handle_errors
def trigger(
    name: str,
    param: list[str] | None = ParamOption,
    override_quiet_hours: bool = typer.Option(
        False,
        "--override-quiet-hours",
        help=f"Run even inside the automate's quiet hours (tags the run {OVERRIDE_TAG}).",
    ),
    once: bool = typer.Option(
        False,
        "--once",
        help="A service: run its one-shot catch-up mode (its `once` command) once, under the "
        "guard; skipped while its loop runs.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Start one run of an automate now, through the worker and the guard."""
    settings = load_settings()
    automate = declared_registry(settings).get(name)
    if automate is None or not automate.kind.deployable:
        what = "declared" if automate is None else "deployable (it is a lib)"
        raise UnknownAutomateError(f"no automate named {name!r} is {what}; nothing was started")
    pairs = list(param or [])
    if automate.kind is Kind.SERVICE:
        if not once:
            raise RunParametersError(
                f"{name} is a service: `automates sync` starts its loop while it is enabled; "
                "`--once` runs its one-shot mode; nothing was started"
            )
        if automate.once is None:
            raise RunParametersError(
                f"{name}: --once needs a one-shot mode, and the declaration has no `once` "
                "command; nothing was started"
            )
        pairs.append(f"{ONCE}=true")
    elif once:
        raise RunParametersError(
            f"{name}: --once is for a service's one-shot mode, and {name} is a "
            f"{automate.kind.value} automate; nothing was started"
        )
    asker = principal.tag(principal.operator(getpass.getuser()))
    tags = [MANUAL_TAG, asker, *([OVERRIDE_TAG] if override_quiet_hours else [])]
    run = asyncio.run(_trigger(settings, name, pairs, tags))
    if as_json:
        emit_json(run)
    else:
        console.print(f"started {run['flow_run_name']} ({run['flow_run_id']}): {run['url']}")


async def _trigger(settings: Settings, name: str, pairs: list[str], tags: list[str]) -> Any:
    async with prefect_client(settings.api_url) as client:
        deployment = await managed_deployment(client, name)
        if deployment is None:
            raise UnknownAutomateError(
                f"{name!r} has no deployment on the server; run `automates sync` first"
            )
        given = parameters_from_pairs(pairs, deployment.parameter_openapi_schema)
        parameters = checked_parameters(deployment, name, given)
        run = await start_run(client, deployment, parameters, tags)
    return {
        "automate": name,
        "flow_run_id": str(run.id),
        "flow_run_name": run.name,
        "parameters": run.parameters,
        "tags": sorted(run.tags),
        "url": f"{settings.ui_url}/runs/flow-run/{run.id}",
    }
