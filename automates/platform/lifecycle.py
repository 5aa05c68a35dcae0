"""`automates up` and `down`: the whole local layer on embedded defaults, in the data folder.

Every step is idempotent: what already runs is reused, so `up` is safe to run twice, and data
lives in the data folder so it survives `down` and a later `up`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from automates.errors import PlatformError
from automates.platform import components, embedded_pg
from automates.platform.database import database_url
from automates.platform.processes import stop_together
from automates.server.client import api_healthy
from automates.server.deploy import SyncReport
from automates.settings import Settings
from automates.store.engine import make_engine, migrate
from automates.store.urls import redacted
from automates.sync import sync

Step = Callable[[str], None]


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
    elif not asyncio.run(api_healthy(settings.api_url)):
        raise PlatformError(f"the Prefect API at {settings.api_url} does not answer /health")

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
    stopped = [c.name for c in stop_together([*clients, components.webhook(settings)])]
    if components.server(settings).stop():
        stopped.append("prefect-server")
    if settings.embedded and embedded_pg.stop(settings.data_path):
        stopped.append("embedded-postgresql")
    return stopped


def status(settings: Settings) -> dict[str, Any]:
    run_dir = settings.data_path / "run"
    workers = {
        p.stem: components.worker(settings, p.stem.removeprefix("worker-")).pid() is not None
        for p in sorted(run_dir.glob("worker-*.pid"))
    }
    return {
        "embedded_postgresql": (
            embedded_pg.running_url(settings.data_path) is not None if settings.embedded else None
        ),
        "prefect_server_process": components.server(settings).pid() is not None,
        "api_healthy": asyncio.run(api_healthy(settings.api_url)),
        "api_url": settings.api_url,
        "ui_url": settings.ui_url,
        "workers": workers,
        "webhook_process": components.webhook(settings).pid() is not None,
    }
