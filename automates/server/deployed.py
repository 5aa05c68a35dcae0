"""Reading what the server holds, once, in as few requests as its paging allows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.responses import DeploymentResponse

from automates.server.spec import DeploymentSpec, deployed_spec
from automates.server.triggers import read_deployed_triggers

PAGE = 200  # the server's default maximum page size
T = TypeVar("T")


@dataclass(frozen=True)
class Deployed:
    """One deployment on the server: its ids and its comparable spec."""

    id: UUID
    flow_id: UUID
    spec: DeploymentSpec
    response: DeploymentResponse


@dataclass(frozen=True)
class ServerState:
    flows: dict[str, UUID]  # flow name → id
    deployments: dict[str, Deployed]  # "flow/deployment" → deployment
    work_pools: frozenset[str]


async def read_server_state(client: PrefectClient) -> ServerState:
    flows = await read_all(client.read_flows)
    names = {flow.id: flow.name for flow in flows}
    deployments: dict[str, Deployed] = {}
    triggers = await read_deployed_triggers(client)
    for deployment in await read_all(client.read_deployments):
        flow_name = names.get(deployment.flow_id, "?")
        spec = deployed_spec(deployment, flow_name, triggers.get(deployment.id, ()))
        deployments[spec.full_name] = Deployed(deployment.id, deployment.flow_id, spec, deployment)
    pools = await read_all(client.read_work_pools)
    return ServerState(
        flows={flow.name: flow.id for flow in flows},
        deployments=deployments,
        work_pools=frozenset(pool.name for pool in pools),
    )


async def read_all(read: Callable[..., Awaitable[Sequence[T]]], **filters: Any) -> list[T]:
    """Every item a paged read method returns, page by page."""
    items: list[T] = []
    while True:
        page = await read(limit=PAGE, offset=len(items), **filters)
        items.extend(page)
        if len(page) < PAGE:
            return items
