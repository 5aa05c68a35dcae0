"""`automates doctor`: check a running layer and name each problem with the command that fixes it.

Six checks (doctor_checks.py), each a pure function of facts read beforehand (`read_facts`,
the only I/O, here):

- server: the Prefect API answers `/ready` (it reaches its database);
- scheduler: every managed deployment with an active schedule that fires within
  `HORIZON` has a future Scheduled run (the server's scheduler creates them);
- workers: every work pool with a managed deployment has a live worker, as
  `automates status` reads them (lifecycle.status, Prefect's worker heartbeats);
- store: the store's schema is at this checkout's head migration;
- blocks: the block documents `automates sync` saves (the store's connection, the LLM CLI,
  the built-in permission templates) are on the server;
- routes: each alert route of the routes file answers a TCP connection on its host and port,
  within `ROUTE_TIMEOUT_SECONDS`; nothing to check when only the journal is configured.

A check that needs the server is not checked (`ok` None) when the server does not answer:
the server's own problem says what to do. No detail names a secret: the database URL is
redacted, a route is shown by its name, channel and host:port only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from automates.errors import AutomatesError
from automates.platform.doctor_checks import (
    HORIZON,
    MAX_NAMED,
    ROUTE_TIMEOUT_SECONDS,
    SERVER_TIMEOUT_SECONDS,
    SYNC,
    UNREAD,
    Check,
    Facts,
    RouteProbe,
    ScheduledDeployment,
    StoreFacts,
    route_address,
    run_checks,
    without_credentials,
)
from automates.registry.model import MANAGED_TAG
from automates.settings import Settings

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.responses import DeploymentResponse

    from automates.alerts.routes import Route


def doctor(settings: Settings, now: datetime | None = None) -> list[Check]:
    """Every check of the layer these settings describe."""
    facts = read_facts(settings)
    return run_checks(facts, now or datetime.now(UTC))


def read_facts(settings: Settings) -> Facts:
    from automates.platform import lifecycle

    # The API, the work pools' workers and the components, as `automates status` reads them.
    status = lifecycle.status(settings)
    facts = Facts(
        api_url=without_credentials(settings.api_url),
        external_api=settings.external_api,
        api_ready=bool(status["api_ready"]),
        api_detail=str(status["api"]),
        layer_pools=frozenset({settings.work_pool, settings.agent.pool, settings.warm_pool}),
        browser_pool=settings.browser.pool,
        store=_store_facts(settings),
        workers=status["workers"],
        components=status["components"],
        expected_blocks=expected_blocks(settings),
    )
    # status names a pool without a live worker as a warning too; only a failed read is kept.
    unread = [w.removeprefix("workers: ") for w in status["warnings"] if w.startswith(UNREAD)]
    if unread:
        facts.workers_error = "; ".join(unread)
    routes, secrets = _routes(settings, facts)
    if facts.api_ready:
        try:
            asyncio.run(_read_server(settings, facts))
        except (AutomatesError, TimeoutError, OSError) as error:
            facts.server_error = str(error) or type(error).__name__
    if routes is not None:
        facts.routes = asyncio.run(_probe_routes(routes, secrets))
    return facts


def expected_blocks(settings: Settings) -> list[tuple[str, str]]:
    """(block type slug, name) of every block document sync saves (sync.py, `_save_blocks`)."""
    from automates.agents.llm_cli import LlmCli
    from automates.agents.templates import BUILTIN_TEMPLATES, PermissionTemplate
    from blocks.store import BLOCK_TYPE

    return [
        (BLOCK_TYPE, settings.store_block),
        (LlmCli._block_type_slug, settings.llm.cli_block),
        *((PermissionTemplate._block_type_slug, name) for name in BUILTIN_TEMPLATES),
    ]


def _store_facts(settings: Settings) -> StoreFacts:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from automates.store.database import database_url
    from automates.store.engine import (
        MIGRATIONS,
        current_revision,
        head_revision,
        make_engine,
        transaction,
    )
    from automates.store.urls import mask_passwords, redacted

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    known = frozenset(s.revision for s in ScriptDirectory.from_config(config).walk_revisions())
    head, embedded = head_revision(), settings.embedded
    try:
        url = database_url(settings)
    except AutomatesError as error:
        where = "the embedded PostgreSQL"
        return StoreFacts(where, head=head, known=known, error=str(error), embedded=embedded)
    where = redacted(url)
    engine = make_engine(url)
    try:
        with transaction(engine) as connection:
            current = current_revision(connection)
    except AutomatesError as error:
        failed = mask_passwords(str(error))
        return StoreFacts(where, head=head, known=known, error=failed, embedded=embedded)
    finally:
        engine.dispose()
    return StoreFacts(where, current=current, head=head, known=known, embedded=embedded)


async def _read_server(settings: Settings, facts: Facts) -> None:
    from automates.server.client import prefect_client

    now = datetime.now(UTC)
    async with asyncio.timeout(SERVER_TIMEOUT_SECONDS), prefect_client(settings.api_url) as client:
        deployments = await _managed_deployments(client)
        expects = [_expects_runs(d, now) for d in deployments]
        futures = await asyncio.gather(
            *(
                _has_future_run(client, d, now) if e else _no()
                for d, e in zip(deployments, expects, strict=True)
            )
        )
        facts.present_blocks = await _present_blocks(client, facts.expected_blocks)
    facts.deployments = [
        ScheduledDeployment(d.name, e, future, d.updated)
        for d, e, future in zip(deployments, expects, futures, strict=True)
    ]
    pools: dict[str, list[str]] = {}
    for d in deployments:
        if d.work_pool_name:
            pools.setdefault(d.work_pool_name, []).append(d.name)
    facts.pools = {pool: sorted(names) for pool, names in pools.items()}


async def _managed_deployments(client: PrefectClient) -> list[DeploymentResponse]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    from automates.server.deployed import read_all

    managed = DeploymentFilter(tags=DeploymentFilterTags(all_=[MANAGED_TAG]))
    return await read_all(client.read_deployments, deployment_filter=managed)


def _expects_runs(deployment: DeploymentResponse, now: datetime) -> bool:
    """Not paused, and one of its active schedules fires within HORIZON."""
    from automates.scheduling.preview import TooManyTicks, ticks_between

    if deployment.paused:
        return False
    for schedule in deployment.schedules:
        if not schedule.active:
            continue
        try:
            if ticks_between(schedule.schedule, now, now + HORIZON, limit=1):
                return True
        except TooManyTicks:
            return True
        except (KeyError, ValueError):  # a schedule class the preview does not know
            return True
    return False


async def _has_future_run(
    client: PrefectClient, deployment: DeploymentResponse, now: datetime
) -> bool:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    runs = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
            expected_start_time=FlowRunFilterExpectedStartTime(after_=now),  # type: ignore[arg-type]
        ),
        limit=1,
    )
    return bool(runs)


async def _no() -> bool:
    return False


async def _present_blocks(
    client: PrefectClient, expected: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    from prefect.exceptions import ObjectNotFound

    present = set()
    for slug, name in expected:
        with contextlib.suppress(ObjectNotFound):
            await client.read_block_document_by_name(name, slug, include_secrets=False)
            present.add((slug, name))
    return present


def _routes(
    settings: Settings, facts: Facts
) -> tuple[list[Route] | None, dict[str, dict[str, str] | RouteProbe]]:
    """The routes to probe (None: only the journal), and each one's secrets or, when they
    cannot be read, its verdict already. Secret blocks are read from the API."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from automates.alerts.routes import load_routing
    from automates.alerts.secrets import RouteSecretError, route_secrets
    from automates.errors import DeclarationError
    from automates.registry.alert_kinds import Channel

    try:
        routing = load_routing(settings.routes_path)
    except DeclarationError as error:
        facts.routes_error = "; ".join(str(p) for p in error.problems[:MAX_NAMED])
        return None, {}
    routes = [r for r in routing.all_routes.values() if r.channel is not Channel.LOG]
    if not routes:
        return None, {}
    found: dict[str, dict[str, str] | RouteProbe] = {}
    for route in routes:
        channel = route.channel.value
        if not facts.api_ready and any(ref.secret for ref in route.secret_refs.values()):
            found[route.name] = RouteProbe(route.name, channel, checked=False)
            continue
        try:
            with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
                found[route.name] = route_secrets(route)
        except RouteSecretError as error:
            found[route.name] = RouteProbe(
                route.name,
                channel,
                error=str(error.problem.message),
                fix=f"set it (e.g. in .env), then `automates alerts test {route.name}`",
            )
    return routes, found


async def _probe_routes(
    routes: Sequence[Route], secrets: Mapping[str, dict[str, str] | RouteProbe]
) -> list[RouteProbe]:
    return list(await asyncio.gather(*(_probe(route, secrets[route.name]) for route in routes)))


async def _probe(route: Route, secrets: dict[str, str] | RouteProbe) -> RouteProbe:
    if isinstance(secrets, RouteProbe):
        return secrets
    channel = route.channel.value
    try:
        host, port = route_address(route, secrets)
    except ValueError as error:
        return RouteProbe(
            route.name, channel, error=str(error), fix=f"correct the route's URL, then `{SYNC}`"
        )
    address = f"{host}:{port}"
    try:
        async with asyncio.timeout(ROUTE_TIMEOUT_SECONDS):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    except TimeoutError:
        why = f"{address} did not answer within {ROUTE_TIMEOUT_SECONDS:g} s"
    except OSError as error:
        why = f"{address} is unreachable ({error.strerror or type(error).__name__})"
    else:
        return RouteProbe(route.name, channel, address)
    return RouteProbe(
        route.name,
        channel,
        address,
        error=why,
        fix=f"check {host}'s address and the network from this host, then "
        f"`automates alerts test {route.name}`",
    )
