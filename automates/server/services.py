"""Service automates on the server: one loop run while enabled, none while disabled.

Sync calls `keep_services` after writing the deployments: an enabled service without an
active loop run gets one (the first start, a start after a crash-loop stop or an operator's
cancel), and a disabled or undeclared service's active runs are cancelled (Prefect's worker
kills a Running one; one not yet started is cancelled at once). Between syncs, the service flow
restarts its command itself and the deployment's "keep running" automation restarts a loop
run whose process died (automates/guard/service.py, automates/server/triggers.py).

`service_problem` says why an enabled service is not running, for reconcile.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, StateType

from automates import principal
from automates.registry.model import Automate, Kind
from automates.scheduling.services import is_loop_run
from automates.server.runs import managed_deployment

SERVICE_TAG = f"kind:{Kind.SERVICE.value}"
# Runs sync starts carry this tag, so the UI tells a start from a restart by the automation.
STARTED_TAG = "service:started-by-sync"
ACTIVE = (
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.PAUSED,
    StateType.CANCELLING,
)
NOT_STARTED = (StateType.SCHEDULED, StateType.PENDING, StateType.PAUSED)
RECENT = 20


@dataclass
class ServiceChanges:
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)


async def runs_of(
    client: PrefectClient, deployment_id: UUID, states: Iterable[StateType] | None = None
) -> list[FlowRun]:
    """The deployment's runs (in `states` if given), newest first: loop and one-shot."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    state = None
    if states is not None:
        state = FlowRunFilterState(type=FlowRunFilterStateType(any_=list(states)))
    return await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]), state=state
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=RECENT,
    )


async def loop_runs(
    client: PrefectClient, deployment_id: UUID, states: Iterable[StateType] | None = None
) -> list[FlowRun]:
    """The deployment's loop runs (in `states` if given), newest first."""
    return [r for r in await runs_of(client, deployment_id, states) if is_loop_run(r.parameters)]


async def keep_services(client: PrefectClient, services: Iterable[Automate]) -> ServiceChanges:
    """Start the loop run of each enabled service that has none active; stop the active
    runs of each disabled one."""
    changes = ServiceChanges()
    for service in services:
        deployment = await managed_deployment(client, service.name)
        if deployment is None:
            continue
        active = await loop_runs(client, deployment.id, ACTIVE)
        if service.enabled and not active:
            await client.create_flow_run_from_deployment(
                deployment.id, tags=[STARTED_TAG, principal.tag(principal.SYSTEM)]
            )
            changes.started.append(service.name)
        elif not service.enabled and active:
            await stop_runs(client, active, "disabled in the registry (automates sync)")
            changes.stopped.append(service.name)
    return changes


async def stop_service(client: PrefectClient, deployment_id: UUID, reason: str) -> bool:
    """Stop every active run of the service's deployment (loop or one-shot); whether any was."""
    active = await runs_of(client, deployment_id, ACTIVE)
    await stop_runs(client, active, reason)
    return bool(active)


async def stop_runs(client: PrefectClient, runs: Iterable[FlowRun], reason: str) -> None:
    """Cancel each run: one not started yet at once, a running one through Cancelling (its
    worker kills its process, and the service flow its command)."""
    from prefect.states import Cancelled, Cancelling

    for run in runs:
        if run.state is None or run.state.type is StateType.CANCELLING:
            continue
        state = Cancelled if run.state.type in NOT_STARTED else Cancelling
        await client.set_flow_run_state(run.id, state(message=reason), force=True)


async def service_problem(
    client: PrefectClient, service: Automate, pending_grace_seconds: float, now: datetime
) -> str | None:
    """Why an enabled service is not running (None: its loop runs, or has just been asked
    for and is within the workers' pickup grace)."""
    deployment = await managed_deployment(client, service.name)
    if deployment is None:
        return None  # reconcile reports the missing deployment itself
    runs = await loop_runs(client, deployment.id)
    for run in runs:
        state = run.state
        if state is None:
            continue
        if state.type is StateType.RUNNING:
            return None
        if state.type in NOT_STARTED or state.type is StateType.CANCELLING:
            waiting = now - _utc(run.expected_start_time or run.created or now)
            starting = state.type in (StateType.SCHEDULED, StateType.PENDING)
            if starting and waiting <= timedelta(seconds=pending_grace_seconds):
                return None
            return f"its loop run {run.name} is {state.name} since {_when(run)}, not running"
    if not runs:
        return "it has never run: `automates sync` starts it"
    last = runs[0]
    state_name = last.state.name if last.state else "unknown"
    message = f" ({last.state.message})" if last.state and last.state.message else ""
    return (
        f"not running: its last loop run {last.name} ended {state_name}{message} at "
        f"{_when(last)}; `automates sync` starts it again"
    )


def _when(run: FlowRun) -> str:
    moment: Any = run.end_time or run.expected_start_time or run.created
    return "?" if moment is None else _utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def _utc(moment: Any) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
