"""Approvals: `automates approve NAME` (automates/scheduling/approval.py).

It approves the version of the declaration the registry holds now (its digest), and only if the
server runs that same version: approving an edit that is not synced yet would let the old
version run under the new one's approval. Then:

- `before_first_run`: every run of the deployment suspended for approval is resumed through
  `resume_flow_run`, the API the UI's Resume button calls; each finds the approval and runs.
- `before_enable`: the schedules are activated through the Prefect API, as the next sync would
  (unless an open breaker or a hold for review keeps them paused).
"""

from __future__ import annotations

import asyncio
import getpass
from typing import Any

import typer
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import SetStateStatus

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.errors import ApprovalError, UnknownAutomateError
from automates.guard.approval import KEY_PREFIX, version
from automates.registry.digest import declaration_digest
from automates.registry.model import Automate, Registry
from automates.registry.policy import GUARD_ENV, GuardPolicy
from automates.scheduling.approval import Approval
from automates.server.client import prefect_client
from automates.server.runs import managed_deployment
from automates.settings import Settings
from automates.store.approvals import record_approval
from automates.store.database import database_url
from automates.store.declared import declared_registry
from automates.store.engine import transaction_on
from automates.store.held import schedules_held

app = typer.Typer()


@app.command()
@handle_errors
def approve(
    name: str,
    by: str | None = typer.Option(None, "--by", help="Who approves (default: your user name)."),
    note: str | None = typer.Option(None, "--note", help="Why, or what was checked."),
    as_json: bool = JsonOption,
) -> None:
    """Approve the current version of an automate that asks for approval."""
    settings = load_settings()
    registry = declared_registry(settings)
    automate = registry.get(name)
    if automate is None:
        raise UnknownAutomateError(f"no automate named {name!r} is declared; nothing approved")
    if automate.approval is Approval.NONE:
        raise ApprovalError(
            f"{name} declares approval: none, so there is nothing to approve; nothing approved"
        )
    result = asyncio.run(_approve(settings, registry, automate, by or getpass.getuser(), note))
    if as_json:
        emit_json(result)
        return
    given = "approved" if result["new"] else "already approved"
    console.print(
        f"{name} version {result['version']} ({result['stage']}): {given} by "
        f"{result['approved_by']} at {result['approved_at']:%Y-%m-%d %H:%M:%S %Z}"
    )
    for run_id in result["resumed"]:
        console.print(f"resumed waiting run {run_id}")
    for run_id, reason in result["not_resumed"].items():
        console.print(f"[yellow]could not resume {run_id}[/yellow]: {reason}")
    if result["schedules"]:
        console.print(f"schedules: {result['schedules']}")


async def _approve(
    settings: Settings, registry: Registry, automate: Automate, who: str, note: str | None
) -> dict[str, Any]:
    digest = declaration_digest(automate, automate.work_pool or settings.work_pool)
    stage = automate.approval
    async with prefect_client(settings.api_url) as client:
        deployment = await managed_deployment(client, automate.name)
        if deployment is not None:
            _same_version(automate.name, deployment, digest)
        waiting = (
            await _waiting_runs(client, deployment.id)
            if deployment is not None and stage is Approval.BEFORE_FIRST_RUN
            else []
        )
        with transaction_on(database_url(settings)) as connection:
            row, new = record_approval(
                connection,
                automate.name,
                digest,
                stage.value,
                who,
                flow_run_id=waiting[0].id if waiting else None,
                note=note,
            )
            if new:
                raise_alert(connection, catalog.approval_decided(automate.name, who))
            held = schedules_held(connection, registry, settings.work_pool)
        answer = {"approve": True, "by": who, **({"note": note} if note else {})}
        resumed, not_resumed = [], {}
        for run in waiting:
            response = await client.resume_flow_run(run.id, run_input=answer)
            if response.status is SetStateStatus.ACCEPT:
                resumed.append(str(run.id))
            else:
                not_resumed[str(run.id)] = getattr(response.details, "reason", response.status)
        schedules = ""
        if stage is Approval.BEFORE_ENABLE:
            schedules = await _enable(client, automate, deployment, held)
    return {
        "automate": automate.name,
        "stage": stage.value,
        "digest": digest,
        "version": version(digest),
        "new": new,
        "approved_by": row.approved_by,
        "approved_at": row.approved_at,
        "note": row.note,
        "resumed": resumed,
        "not_resumed": not_resumed,
        "schedules": schedules,
    }


def _same_version(name: str, deployment: Any, digest: str) -> None:
    env = (deployment.job_variables or {}).get("env") or {}
    policy = GuardPolicy.from_env(env) if GUARD_ENV in env else None
    deployed = policy.declaration_digest if policy is not None else None
    if deployed != digest:
        shown = version(deployed) if deployed else "one without a digest"
        raise ApprovalError(
            f"the server runs another version of {name} ({shown}) than the registry declares "
            f"({version(digest)}); run `automates sync`, then approve; nothing approved"
        )


async def _waiting_runs(client: PrefectClient, deployment_id: Any) -> list[FlowRun]:
    """The deployment's runs suspended by the guard for approval, oldest first."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    runs = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
    )
    return [
        run
        for run in runs
        if run.state is not None
        and (run.state.state_details.pause_key or "").startswith(KEY_PREFIX)
    ]


async def _enable(
    client: PrefectClient, automate: Automate, deployment: Any, held: frozenset[str]
) -> str:
    if deployment is None:
        return "untouched (no deployment yet: `automates sync` creates it active)"
    if not automate.enabled:
        return "kept inactive (the automate is disabled)"
    if automate.name in held:
        return "kept inactive (an open breaker or a hold for review keeps them paused)"
    for schedule in deployment.schedules:
        if not schedule.active:
            await client.update_deployment_schedule(deployment.id, schedule.id, active=True)
    return "active"
