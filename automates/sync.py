"""`automates sync`: the declarations, pushed to the server, the registry table and the block.

Validation comes first and is all-or-nothing: one bad declaration and nothing is written
anywhere.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Connection, Engine

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.alerts.routes import Routing, load_routing, registry_problems
from automates.alerts.secrets import route_problems
from automates.errors import DeclarationError
from automates.registry.agent_intervals import interval_problems
from automates.registry.alert_kinds import AlertKind, condition
from automates.registry.entrypoints import static_problems
from automates.registry.model import Kind, Registry
from automates.scheduling.approval import Approval
from automates.server.deploy import Progress, SyncReport, sync_server
from automates.settings import Settings
from automates.store.alerts import open_conditions, save_routing
from automates.store.approvals import awaiting_enable_approval
from automates.store.declared import declared_registry
from automates.store.engine import make_engine, migrate, transaction
from automates.store.held import schedules_held
from automates.store.registry import (
    declaration_digest,
    delete_automates,
    stored_digests,
    upsert_automates,
)
from automates.store.taskruns import ensure_platform_perimeter
from automates.store.urls import redacted
from blocks.store import save_store_block


def validated_registry(settings: Settings) -> Registry:
    """The registry, refused whole if any declaration or entrypoint is invalid (including an
    agent's schedule firing more often than the minimum interval, or a route it names that
    the routes file lacks)."""
    return validated(settings)[0]


def validated(
    settings: Settings, *, secrets: bool = False, blocks: bool = True
) -> tuple[Registry, Routing]:
    """The registry and the routes file, refused whole with every problem of both. With
    `secrets`, every route's secret is read and its URL checked; without `blocks`, routes
    whose secret is a Secret block (read from the API) are left to sync."""
    registry = declared_registry(settings)
    problems = static_problems(registry, settings.project_root)
    problems += interval_problems(registry.automates, settings.agent.min_interval_seconds)
    try:
        routing = load_routing(settings.routes_path)
    except DeclarationError as error:
        raise DeclarationError(problems + error.problems) from None
    problems += registry_problems(registry.automates, routing)
    if secrets:
        problems += route_problems(routing, blocks=blocks)
    if problems:
        raise DeclarationError(problems)
    return registry, routing


async def sync(
    settings: Settings,
    database_url: str,
    *,
    prune: bool = False,
    progress: Progress | None = None,
) -> SyncReport:
    # Route secrets may live in Secret blocks: read from the API, off the event loop.
    registry, routing = await asyncio.to_thread(_validated_with_secrets, settings)
    engine = make_engine(database_url)
    try:
        migrate(engine)
        with transaction(engine) as connection:
            held = schedules_held(connection, registry, settings.work_pool)
        # The blocks do not depend on the deployments: written side by side with them.
        report, (block_written, agent_blocks_written) = await asyncio.gather(
            sync_server(settings, registry, prune=prune, progress=progress, held=held),
            _save_blocks(settings, database_url),
        )
        sync_store(engine, registry, settings.work_pool, report, prune=prune)
        with transaction(engine) as connection:
            save_routing(connection, routing.model_dump(mode="json"))
            announce_awaiting_approval(connection, registry, settings.work_pool)
        await _ensure_unresponsive_automation(settings)
        await _keep_services(settings, registry, report)
        with transaction(engine) as connection:
            ensure_platform_perimeter(connection, settings.project_root)
    finally:
        engine.dispose()
    report.block_written = block_written
    report.agent_blocks_written = agent_blocks_written
    report.database = redacted(database_url)
    return report


def announce_awaiting_approval(connection: Connection, registry: Registry, pool: str) -> None:
    """An `approval: before_enable` automate whose version nobody approved waits, its schedules
    inactive: tell the approvers once (until an approval resolves it)."""
    gated = {
        a.name: declaration_digest(a, a.work_pool or pool)
        for a in registry.automates
        if a.approval is Approval.BEFORE_ENABLE
    }
    for name in sorted(awaiting_enable_approval(connection, gated)):
        if condition(AlertKind.APPROVAL_WAITING, name) not in open_conditions(connection, name):
            raise_alert(connection, catalog.approval_waiting(name, None, Approval.BEFORE_ENABLE))


def _validated_with_secrets(settings: Settings) -> tuple[Registry, Routing]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
        return validated(settings, secrets=True)


def sync_store(
    engine: Engine, registry: Registry, default_pool: str, report: SyncReport, *, prune: bool
) -> None:
    """Write the registry rows whose declaration changed; drop undeclared rows with `prune`."""
    with transaction(engine) as connection:
        stored = stored_digests(connection)
        changed = [
            (automate, pool)
            for automate in registry.automates
            if stored.get(automate.name)
            != declaration_digest(automate, pool := automate.work_pool or default_pool)
        ]
        upsert_automates(connection, changed)
        report.registry_written.extend(automate.name for automate, _ in changed)
        gone = sorted(stored.keys() - {a.name for a in registry.automates})
        if prune:
            delete_automates(connection, gone)
            report.registry_removed.extend(gone)


async def _ensure_unresponsive_automation(settings: Settings) -> None:
    """Prefect's automation that marks Crashed a run whose heartbeats stopped."""
    from automates.server import unresponsive
    from automates.server.client import prefect_client

    async with prefect_client(settings.api_url) as client:
        await unresponsive.ensure(client, settings.run_heartbeat_seconds)


async def _keep_services(settings: Settings, registry: Registry, report: SyncReport) -> None:
    """Each enabled service's loop run started if it has none; a disabled one's stopped."""
    from automates.server.client import prefect_client
    from automates.server.services import keep_services

    services = [a for a in registry.automates if a.kind is Kind.SERVICE]
    if not services:
        return
    async with prefect_client(settings.api_url) as client:
        changes = await keep_services(client, services)
    report.services_started = changes.started
    report.services_stopped = changes.stopped


async def _save_blocks(settings: Settings, database_url: str) -> tuple[bool, list[str]]:
    """The store block, then the agent blocks. One after the other: a fresh Prefect server
    (3.8.8) creates its block-encryption key when it stores its first block document, and two
    first documents at once both insert the key; the loser's save fails (409, then 404 on
    Prefect's read-back). Seen on a fresh server's first sync."""
    block_written = await _save_block(settings, database_url)
    return block_written, await _save_agent_blocks(settings)


async def _save_agent_blocks(settings: Settings) -> list[str]:
    """The permission templates and the LLM CLI block, saved where missing (never overwritten:
    an operator's edits in the UI survive every sync)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from automates.agents.llm_cli import asave_default_llm_cli
    from automates.agents.templates import asave_builtin_templates

    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
        written = [f"template:{name}" for name in await asave_builtin_templates()]
        if await asave_default_llm_cli(settings=settings):
            written.append(f"llm-cli:{settings.llm.cli_block}")
    return written


async def _save_block(settings: Settings, database_url: str) -> bool:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
        return await save_store_block(settings.store_block, database_url)
