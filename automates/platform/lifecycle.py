"""`automates up` and `down`: the whole local layer on embedded defaults, in the data folder.

Every step is idempotent: what already runs is reused, so `up` is safe to run twice, and data
lives in the data folder so it survives `down` and a later `up`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from automates.alerts.heartbeat import pool_problems, pools_needed, worker_live
from automates.errors import PlatformError, ServerError
from automates.platform import components, embedded_pg
from automates.platform.database import database_url
from automates.platform.processes import State, stop_together
from automates.registry.model import MANAGED_TAG
from automates.server.client import prefect_client
from automates.server.deploy import SyncReport
from automates.server.deployed import read_all
from automates.settings import Settings
from automates.store.engine import make_engine, migrate
from automates.store.urls import redacted
from automates.sync import sync

if TYPE_CHECKING:
    from prefect.client.schemas.objects import Worker

Step = Callable[[str], None]
# `status` reads the server's work pools and workers within this bound, or says it could not.
WORKERS_TIMEOUT_SECONDS = 15.0


@dataclass
class UpReport:
    ui_url: str
    api_url: str
    database: str
    started: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    sync: SyncReport | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ui_url": self.ui_url,
            "api_url": self.api_url,
            "database": self.database,
            "started": self.started,
            "reused": self.reused,
            "sync": self.sync.as_dict() if self.sync else None,
        }


def up(settings: Settings, *, run_sync: bool = True, step: Step | None = None) -> UpReport:
    say = step or (lambda message: None)
    report = UpReport(ui_url=settings.ui_url, api_url=settings.api_url, database="")
    if not settings.external_api:
        components.check_server_bind(settings)  # before anything starts

    if settings.embedded:
        was_running = embedded_pg.running_url(settings.data_path) is not None
        say("starting the embedded PostgreSQL")
        embedded_pg.start(settings.data_path)
        (report.reused if was_running else report.started).append("embedded-postgresql")
    url = database_url(settings)
    report.database = redacted(url)

    say("migrating the store")
    engine = make_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()

    if not settings.external_api:
        say(f"starting the Prefect server on {settings.api_url}")
        started = components.start_server(settings, url)
        (report.started if started else report.reused).append("prefect-server")
    else:
        ready, detail = asyncio.run(components.api_ready(settings.api_url))
        if not ready:
            raise PlatformError(f"the Prefect API at {settings.api_url} is {detail}")

    if run_sync:
        say("syncing the registry")
        report.sync = asyncio.run(sync(settings, url))

    say(f"starting a process worker on pool {settings.work_pool!r}")
    started = components.start_worker(settings, settings.work_pool)
    (report.started if started else report.reused).append(f"worker-{settings.work_pool}")

    say(f"starting the agent dispatcher on pool {settings.agent_pool!r}")
    started = components.start_agent_dispatcher(settings)
    (report.started if started else report.reused).append(f"worker-{settings.agent_pool}")

    if _declares_pool(settings, settings.warm_pool):  # an idle warm worker is a wasted process
        say(f"starting the warm worker on pool {settings.warm_pool!r}")
        started = components.start_warm_worker(settings)
        (report.started if started else report.reused).append(f"worker-{settings.warm_pool}")

    say("starting the alert deliverer")
    started = components.start_alerts(settings)
    (report.started if started else report.reused).append("alerts")

    if _declares_webhook(settings):  # no automate takes webhook runs: no port opened
        say(f"starting the webhook on {settings.webhook_host}:{settings.webhook_port}")
        started = components.start_webhook(settings)
        (report.started if started else report.reused).append("webhook")
    return report


def _declares_webhook(settings: Settings) -> bool:
    from automates.errors import DeclarationError
    from automates.registry.loader import load_registry

    try:
        return any(a.webhook for a in load_registry(settings.registry_path).deployable)
    except DeclarationError:
        return False


def _declares_pool(settings: Settings, pool: str) -> bool:
    from automates.errors import DeclarationError
    from automates.registry.loader import load_registry

    try:
        registry = load_registry(settings.registry_path)
    except DeclarationError:  # `up --no-sync` on a broken registry: sync reports it
        return False
    return any(a.work_pool == pool for a in registry.deployable)


def down(settings: Settings) -> list[str]:
    """Stop the workers, the server and the embedded PostgreSQL; return what was stopped."""
    run_dir = settings.data_path / "run"
    pools = [f.stem.removeprefix("worker-") for f in sorted(run_dir.glob("worker-*.pid"))]
    # The workers and the webhook depend on nothing but the server: stopped together, first.
    clients = [components.worker(settings, pool) for pool in pools]
    stopped = [
        c.name
        for c in stop_together(
            [*clients, components.webhook(settings), components.alerts(settings)]
        )
    ]
    if components.server(settings).stop():
        stopped.append("prefect-server")
    if settings.embedded and embedded_pg.stop(settings.data_path):
        stopped.append("embedded-postgresql")
    return stopped


def status(settings: Settings) -> dict[str, Any]:
    """Each component `up` starts (running, dead or stopped), whether the API can serve, and
    every work pool's workers as the server sees them (remote ones included).

    `ok` is false when the API is not ready, when a component died (its pid file names a
    process that is gone), or when one that `up` starts is not running while the layer is up.
    A work pool with a managed deployment and no live worker (as the server sees it), or
    workers that cannot be read, are warnings: a worker `up` just started sends its first
    heartbeat only tens of seconds later, and the outbound heartbeat (alerts/heartbeat.py) is
    what watches the pools over time.
    """
    states = _component_states(settings)
    api_ready, api_detail = asyncio.run(components.api_ready(settings.api_url))
    problems = []
    if not api_ready:
        problems.append(f"the Prefect API at {settings.api_url} is {api_detail}")
    for name, (state, expected) in states.items():
        if state == "dead":
            fix = "`automates up` restarts it" if expected else "`automates down` clears it"
            problems.append(f"{name} is dead (its process is gone): {fix}")
        elif state == "stopped" and expected and api_ready:
            problems.append(f"{name} is not running: `automates up` starts it")
    workers: dict[str, Any] = {}
    warnings: list[str] = []
    if api_ready:
        workers, warnings = asyncio.run(_server_workers(settings))
    return {
        "ok": not problems,
        "api_url": settings.api_url,
        "ui_url": settings.ui_url,
        "api_ready": api_ready,
        "api": api_detail,
        "database": "embedded" if settings.embedded else redacted(settings.database_url or ""),
        "components": {name: state for name, (state, _) in states.items()},
        "workers": workers,
        "problems": problems,
        "warnings": warnings,
    }


async def _server_workers(settings: Settings) -> tuple[dict[str, Any], list[str]]:
    """Pool → whether it has a live worker, and its workers; the warnings: a pool of managed
    deployments without a live worker, or the read that failed. Never raises for the server."""
    try:
        async with asyncio.timeout(WORKERS_TIMEOUT_SECONDS):
            deployments, workers = await _read_workers(settings)
    except TimeoutError:
        return {}, [
            "workers: the Prefect API did not list the work pools and their workers within "
            f"{WORKERS_TIMEOUT_SECONDS:g} s"
        ]
    except (ServerError, httpx.HTTPError) as error:
        return {}, [f"workers: cannot read the work pools and their workers ({error!s:.300})"]
    now = datetime.now(UTC)  # after the read: no heartbeat is in the future
    needed = pools_needed(deployments, settings.work_pool)
    shown = [*workers, *needed, settings.work_pool, settings.agent_pool, settings.browser_pool]
    live = {pool: sum(worker_live(w, now) for w in listed) for pool, listed in workers.items()}
    report = {
        pool: {
            "live": live.get(pool, 0) > 0,
            "workers": [_worker_entry(w, now) for w in workers.get(pool, [])],
        }
        for pool in sorted(set(shown))
    }
    # Only pools that serve a managed deployment count; the layer's pool alone does not.
    managed = {pool: names for pool, names in needed.items() if names}
    return report, pool_problems(managed, workers, live)


async def _read_workers(
    settings: Settings,
) -> tuple[list[tuple[str, str | None]], dict[str, list[Worker]]]:
    """(deployment, pool) of every managed deployment, and every pool's workers by name."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    managed = DeploymentFilter(tags=DeploymentFilterTags(all_=[MANAGED_TAG]))
    async with prefect_client(settings.api_url) as client:
        deployments = await read_all(client.read_deployments, deployment_filter=managed)
        pools = await read_all(client.read_work_pools)
        found = await asyncio.gather(
            *(
                read_all(client.read_workers_for_work_pool, work_pool_name=pool.name)
                for pool in pools
            )
        )
    workers = {
        pool.name: sorted(listed, key=lambda w: w.name)
        for pool, listed in zip(pools, found, strict=True)
    }
    return [(d.name, d.work_pool_name) for d in deployments], workers


def _worker_entry(worker: Worker, now: datetime) -> dict[str, Any]:
    beat = worker.last_heartbeat_time
    return {
        "name": worker.name,
        "status": worker.status.value,
        "last_heartbeat": beat.isoformat() if beat else None,
        "age_seconds": max(0, round((now - beat).total_seconds())) if beat else None,
    }


def _component_states(settings: Settings) -> dict[str, tuple[State, bool]]:
    """name → (state, whether `up` starts it with these settings and this registry)."""
    states: dict[str, tuple[State, bool]] = {}
    if settings.embedded:
        states["embedded-postgresql"] = (embedded_pg.state(settings.data_path), True)
    states["prefect-server"] = (components.server(settings).state()[0], not settings.external_api)
    expected_pools = [settings.work_pool, settings.agent_pool]
    if _declares_pool(settings, settings.warm_pool):
        expected_pools.append(settings.warm_pool)
    run_dir = settings.data_path / "run"
    found = [f.stem.removeprefix("worker-") for f in sorted(run_dir.glob("worker-*.pid"))]
    for pool in dict.fromkeys([*expected_pools, *found]):
        state = components.worker(settings, pool).state()[0]
        states[f"worker-{pool}"] = (state, pool in expected_pools)
    states["alerts"] = (components.alerts(settings).state()[0], True)
    webhook = components.webhook(settings).state()[0], _declares_webhook(settings)
    if webhook != ("stopped", False):  # an undeclared webhook that never ran is no component
        states["webhook"] = webhook
    return states
