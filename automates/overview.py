"""What `automates list` and `show` print: each declaration beside its life on the server.

Next fire times, the last run and run counts come from the Prefect API (the runs the
scheduler created and the runs that happened), never from our own guesswork.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort

from automates.registry.entrypoints import static_error
from automates.registry.model import Automate, Registry
from automates.server.client import prefect_client
from automates.server.deployed import Deployed, read_server_state
from automates.server.spec import declared_spec
from automates.settings import Settings

READ_CONCURRENCY = 16


@dataclass
class AutomateStatus:
    automate: Automate
    deployment: str | None = None  # "flow/name" on the server, None if not deployed
    active_schedules: int = 0
    next_runs: list[datetime] = field(default_factory=list)
    last_run_state: str | None = None
    last_run_at: datetime | None = None
    runs: int = 0
    failed_runs: int = 0

    def as_dict(self) -> dict[str, Any]:
        a = self.automate
        return {
            "name": a.name,
            "kind": a.kind.value,
            "caste": a.caste,
            "family": a.family,
            "agents": list(a.agents),
            "description": a.description,
            "runbook": a.runbook,
            "entrypoint": a.entrypoint,
            "command": list(a.command) if a.command else None,
            "enabled": a.enabled,
            "timeout_seconds": a.timeout_seconds,
            "concurrency_limit": a.concurrency_limit,
            "work_pool": a.work_pool,
            "schedules": [s.model_dump() for s in a.schedules],
            "deployment": self.deployment,
            "active_schedules": self.active_schedules,
            "next_runs": [t.isoformat() for t in self.next_runs],
            "last_run_state": self.last_run_state,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "runs": self.runs,
            "failed_runs": self.failed_runs,
        }


def select(
    registry: Registry,
    *,
    kind: str | None = None,
    caste: str | None = None,
    family: str | None = None,
) -> list[Automate]:
    return [
        a
        for a in registry.automates
        if (kind is None or a.kind.value == kind)
        and (caste is None or a.caste == caste)
        and (family is None or a.family == family)
    ]


async def gather_status(
    settings: Settings, automates: list[Automate], *, next_count: int = 1
) -> list[AutomateStatus]:
    async with prefect_client(settings.api_url) as client:
        state = await read_server_state(client)
        limit = asyncio.Semaphore(READ_CONCURRENCY)

        async def one(automate: Automate) -> AutomateStatus:
            status = AutomateStatus(automate)
            deployed = _find(settings, automate, state.deployments)
            if deployed is None:
                return status
            status.deployment = deployed.spec.full_name
            status.active_schedules = len(deployed.spec.active_schedules)
            async with limit:
                await _fill_runs(client, deployed, status, next_count)
            return status

        return list(await asyncio.gather(*(one(a) for a in automates)))


def _find(
    settings: Settings, automate: Automate, deployments: dict[str, Deployed]
) -> Deployed | None:
    if not automate.kind.deployable:
        return None
    if static_error(automate, settings.project_root) is None:
        full_name = declared_spec(automate, settings.project_root, settings.work_pool).full_name
        return deployments.get(full_name)
    return next((d for d in deployments.values() if d.spec.name == automate.name), None)


async def _fill_runs(
    client: PrefectClient, deployed: Deployed, status: AutomateStatus, next_count: int
) -> None:
    ours = DeploymentFilter(id=DeploymentFilterId(any_=[deployed.id]))

    def of_types(*, any_: list[StateType] | None = None, not_any_: list[StateType] | None = None):
        return FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=any_, not_any_=not_any_))
        )

    upcoming, last, runs, failed = await asyncio.gather(
        client.read_flow_runs(
            deployment_filter=ours,
            flow_run_filter=of_types(any_=[StateType.SCHEDULED]),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=next_count,
        ),
        client.read_flow_runs(
            deployment_filter=ours,
            flow_run_filter=of_types(not_any_=[StateType.SCHEDULED, StateType.PENDING]),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=1,
        ),
        client.count_flow_runs(
            deployment_filter=ours, flow_run_filter=of_types(not_any_=[StateType.SCHEDULED])
        ),
        client.count_flow_runs(
            deployment_filter=ours,
            flow_run_filter=of_types(any_=[StateType.FAILED, StateType.CRASHED]),
        ),
    )
    status.next_runs = [r.expected_start_time for r in upcoming if r.expected_start_time]
    if last:
        status.last_run_state = last[0].state_name
        status.last_run_at = last[0].start_time or last[0].expected_start_time
    status.runs = runs
    status.failed_runs = failed
