"""A routine's change, carried to the server and the registry tables: the part of `automates
sync` that concerns one declaration, so an agent's change takes effect at once without
re-deploying the operator's automates (the next full sync finds nothing left to do)."""

from __future__ import annotations

from sqlalchemy import Engine

from automates.registry.model import Automate, Registry
from automates.server.client import prefect_client
from automates.server.deploy import SyncReport, sync_server
from automates.server.runs import managed_deployment
from automates.settings import Settings
from automates.store.engine import transaction
from automates.store.held import schedules_held
from automates.store.registry import delete_automates
from automates.store.routines import delete_routine
from automates.sync import announce_awaiting_approval, sync_store


async def deploy(settings: Settings, engine: Engine, automate: Automate) -> SyncReport:
    """Create or update the routine's deployment; its schedules stay paused while it is held
    (waiting for approval, breaker open, held for review) or disabled."""
    registry = Registry(automates=(automate,))
    with transaction(engine) as connection:
        held = schedules_held(connection, registry, settings.work_pool)
    report = await sync_server(settings, registry, held=held)
    sync_store(engine, registry, settings.work_pool, report, prune=False)
    with transaction(engine) as connection:
        announce_awaiting_approval(connection, registry, settings.work_pool)
    return report


async def remove(settings: Settings, engine: Engine, name: str) -> bool:
    """Delete the routine's deployment (and its trigger automations) and its rows; whether a
    deployment was there to delete."""
    async with prefect_client(settings.api_url) as client:
        deployment = await managed_deployment(client, name)
        if deployment is not None:
            await client.delete_deployment(deployment.id)
            await client.delete_resource_owned_automations(f"prefect.deployment.{deployment.id}")
    with transaction(engine) as connection:
        delete_automates(connection, [name])
        delete_routine(connection, name)
    return deployment is not None
