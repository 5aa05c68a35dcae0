"""`automates up`, `down` and `status`: the whole local layer on embedded defaults, in the
data folder, every process of it supervised (supervision.py).

Every step is idempotent: what already runs is reused, so `up` is safe to run twice, and data
lives in the data folder so it survives `down` and a later `up`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from automates.alerts.heartbeat import pool_problems, pools_needed, worker_live
from automates.errors import PlatformError, ServerError
from automates.platform import components, ha
from automates.platform.crash_watch import STATE_FILE, Record, read_records, stop_orphans
from automates.platform.processes import Managed, stop_together
from automates.platform.supervision import ALIVE, Program, Supervisor, render_config
from automates.registry.model import MANAGED_TAG
from automates.server.client import api_ready, prefect_client
from automates.server.deploy import SyncReport
from automates.server.deployed import read_all
from automates.settings import Settings
from automates.store import embedded_pg
from automates.store.database import database_url
from automates.store.engine import make_engine, migrate
from automates.store.urls import redacted
from automates.sync import sync

if TYPE_CHECKING:
    from prefect.client.schemas.objects import Worker

    from automates.registry.model import Automate

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
    ha.check(settings, os.environ)  # before anything starts
    if not settings.external_api:
        components.check_server_bind(settings)
    ha.check_redis(settings)
    supervised = Supervisor(_run_dir(settings))
    programs = {p.name: p for p in _programs(settings)}
    if WEBHOOK in programs:
        _check_webhook_port(settings, supervised)
    changed = supervised.write_config(
        render_config(supervised.run_dir, list(programs.values()), _listener_argv())
    )
    if supervised.answering():
        if changed:
            supervised.apply_config()
        report.reused.append("supervisord")
    else:
        say("starting supervisord")
        _clear_leftovers(settings)
        (supervised.run_dir / STATE_FILE).unlink(missing_ok=True)  # restarts since this `up`
        supervised.start(_supervisord_argv(), components.prefect_env(settings), _cwd(settings), 30)
        report.started.append("supervisord")

    if settings.embedded:
        say("starting the embedded PostgreSQL")
        embedded_pg.prepare(settings.data_path)  # the first initdb, with its error in full
        _start(supervised, EMBEDDED_PG, report)
        _wait_database(settings, supervised)
        embedded_pg.create_database(settings.data_path)
    url = database_url(settings)
    report.database = redacted(url)

    say("migrating the store")
    engine = make_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()

    if not settings.external_api:
        server_down = supervised.programs()[SERVER].state not in ALIVE
        if server_down:
            components.check_server_port(settings)
        if server_down and ha.enabled(settings):
            say("preparing Prefect's database (once, before its API processes)")
            components.prepare_server_database(settings, url)
        say(f"starting the Prefect server on {settings.api_url}")
        _start(supervised, SERVER, report)
        _wait_api(settings, supervised)
        if ha.enabled(settings):
            say("starting Prefect's services (scheduler, automations, ...) on their own")
            _start(supervised, SERVICES, report)
            supervised.wait_running([SERVICES], timeout=STARTUP_SECONDS)
    else:
        ready, detail = asyncio.run(api_ready(settings.api_url))
        if not ready:
            raise PlatformError(f"the Prefect API at {settings.api_url} is {detail}")

    if run_sync:
        say("syncing the registry")
        report.sync = asyncio.run(sync(settings, url))

    rest = [name for name in programs if name not in (EMBEDDED_PG, SERVER, SERVICES)]
    say(f"starting {', '.join(rest)}")
    for name in rest:
        _start(supervised, name, report)
    supervised.wait_running(rest, timeout=STARTUP_SECONDS)
    if WEBHOOK in programs:
        _wait_port(supervised, WEBHOOK, components.webhook_address(settings))
    return report


def _check_webhook_port(settings: Settings, supervised: Supervisor) -> None:
    """Refuse, before anything starts, a webhook port another program holds: the webhook
    could not start, and its readiness probe would take that program for it."""
    if supervised.answering():
        ours = supervised.programs().get(WEBHOOK)
        if ours is not None and ours.state in ALIVE:
            return  # the port is the webhook's own
    address = components.webhook_address(settings)
    if components.port_taken(address):
        raise PlatformError(
            f"the webhook's port {settings.webhook.port} on {settings.webhook.host} is taken by "
            "another program; set AUTOMATES_WEBHOOK_PORT to a free port. Nothing was started"
        )


EMBEDDED_PG = "embedded-postgresql"
SERVER = "prefect-server"
SERVICES = "prefect-services"  # the highly available profile's (ha.py)
WEBHOOK = "webhook"
STARTUP_SECONDS = 90.0  # a cold server runs Prefect's migrations; a loaded machine is slow


def _run_dir(settings: Settings) -> Path:
    return settings.data_path / "run"


def _cwd(settings: Settings) -> Path:
    return settings.project_root


def _supervisord_argv() -> list[str]:
    return [sys.executable, "-m", "supervisor.supervisord"]


def _listener_argv() -> list[str]:
    return [sys.executable, "-m", "automates.platform.crash_watch"]


def _programs(settings: Settings) -> list[Program]:
    """What `up` runs with these settings and this registry, in start order. Each starts
    through launch.py, which reads the settings then."""
    launched = [EMBEDDED_PG] if settings.embedded else []
    launched += [SERVER] if not settings.external_api else []
    launched += [SERVICES] if ha.enabled(settings) else []
    deployable = _deployable(settings)  # read once
    pools = [settings.work_pool, settings.agent.pool]
    if any(a.work_pool == settings.warm_pool for a in deployable):  # else a wasted process
        pools.append(settings.warm_pool)
    launched += [f"worker-{pool}" for pool in pools]
    launched.append("alerts")
    if any(a.webhook for a in deployable):  # no automate takes webhook runs: no port opened
        launched.append(WEBHOOK)
    return [
        Program(
            name,
            (sys.executable, "-m", "automates.platform.launch", name),
            _cwd(settings),
            _priority(name),
            # SIGINT is PostgreSQL's fast shutdown: sessions end, nothing is lost.
            stop_signal="INT" if name == EMBEDDED_PG else "TERM",
        )
        for name in launched
    ]


def _start(supervised: Supervisor, name: str, report: UpReport) -> None:
    started = supervised.start_program(name)
    (report.started if started else report.reused).append(name)


def _wait_database(settings: Settings, supervised: Supervisor) -> None:
    _wait_until(
        supervised,
        EMBEDDED_PG,
        lambda: embedded_pg.running_url(settings.data_path) is not None,
        "was not ready",
    )


def _wait_api(settings: Settings, supervised: Supervisor) -> None:
    _wait_until(
        supervised, SERVER, lambda: components.ready(settings.api_url), "was not ready (/api/ready)"
    )


def _wait_port(supervised: Supervisor, name: str, address: str) -> None:
    _wait_until(supervised, name, lambda: components.port_taken(address), f"did not open {address}")


def _wait_until(
    supervised: Supervisor, name: str, condition: Callable[[], bool], failure: str
) -> None:
    """Wait until `condition` holds, failing at once if supervisord gave up on the program,
    or after STARTUP_SECONDS, with the tail of the program's log."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not condition():
        _check_alive(supervised, name)
        if time.monotonic() > deadline:
            raise PlatformError(
                f"{name} {failure} after {STARTUP_SECONDS:.0f} s:\n"
                f"{Managed(name, supervised.run_dir).log_tail()}"
            )
        time.sleep(0.3)


def _check_alive(supervised: Supervisor, name: str) -> None:
    """A program that supervisord gave up on (or the crash watch stopped) will not come up."""
    info = supervised.programs()[name]
    if info.state not in ALIVE:
        raise PlatformError(
            f"{name} could not start ({info.state.value}: {info.detail}):\n"
            f"{Managed(name, supervised.run_dir).log_tail()}"
        )


def _clear_leftovers(settings: Settings) -> None:
    """Before a fresh supervisord: stop the programs a supervisord that died left running,
    and what an unsupervised `up` of an earlier version left (pid files of its own, the
    embedded PostgreSQL started by pg_ctl), so that the supervised programs can take over."""
    stop_orphans(_run_dir(settings))
    stop_together(_unsupervised(settings))
    if settings.embedded:
        embedded_pg.stop(settings.data_path)


def _unsupervised(settings: Settings) -> list[Managed]:
    """What an unsupervised `up` of an earlier version left: a pid file per process."""
    run_dir = _run_dir(settings)
    return [
        Managed(f.stem, run_dir)
        for f in sorted(run_dir.glob("*.pid"))
        if not f.stem.startswith("supervisord")
    ]


def _deployable(settings: Settings) -> list[Automate]:
    """The registry's deployable automates; none when it does not load (`up --no-sync` on a
    broken registry: sync reports it)."""
    from automates.errors import DeclarationError
    from automates.registry.loader import load_registry

    try:
        return list(load_registry(settings.registry_path).deployable)
    except DeclarationError:
        return []


def down(settings: Settings) -> list[str]:
    """Stop every program and supervisord; return what was stopped, in the order it stopped
    (the workers, the alerts and the webhook first, then the server, then the database)."""
    supervised = Supervisor(_run_dir(settings))
    supervisor_ran = supervised.process.pid() is not None
    stopped = supervised.shutdown()
    stopped |= {c.name for c in stop_together(_unsupervised(settings))}
    if settings.embedded and embedded_pg.stop(settings.data_path):
        stopped.add(EMBEDDED_PG)
    ordered = sorted(stopped, key=lambda name: (-_priority(name), name))
    return [*ordered, "supervisord"] if supervisor_ran else ordered


def _priority(name: str) -> int:
    """supervisord's order: lower starts first and stops last."""
    return {EMBEDDED_PG: 10, SERVER: 20, SERVICES: 25}.get(
        name, 30 if name.startswith("worker-") else 40
    )


def status(settings: Settings) -> dict[str, Any]:
    """supervisord and every program it runs for the layer (state, pid, uptime, restarts),
    whether the API can serve, and every work pool's workers as the server sees them (remote
    ones included).

    `ok` is false when the API is not ready, when supervisord died (its pid file names a
    process that is gone), when a program is in a crash loop (the crash watch stopped it) or
    gave up starting, or when one that `up` starts is not running while the layer is up. A
    program restarting (backoff) is a warning, as are a work pool with a managed deployment
    and no live worker (as the server sees it) and workers that cannot be read: a worker `up`
    just started sends its first heartbeat only tens of seconds later, and the outbound
    heartbeat (alerts/heartbeat.py) is what watches the pools over time.
    """
    found = _component_states(settings)
    api_up, api_detail = asyncio.run(api_ready(settings.api_url))
    problems, warnings = [], []
    if not api_up:
        problems.append(f"the Prefect API at {settings.api_url} is {api_detail}")
    for name, entry in found.items():
        state, log_file = entry["state"], _run_dir(settings) / f"{name}.log"
        if state == "dead":
            problems.append(f"{name} is dead (its process is gone): `automates up` restarts it")
        elif state in ("crash-loop", "fatal"):
            why = entry["crash_loop"] or "it kept exiting as it started"
            problems.append(
                f"{name} is stopped in a crash loop ({why}): fix the cause (its log: "
                f"{log_file}), then `automates up` starts it"
            )
        elif state == "backoff":
            warnings.append(f"{name} exited and is being restarted (its log: {log_file})")
        elif state not in ("running", "starting") and entry["expected"] and api_up:
            problems.append(f"{name} is not running: `automates up` starts it")
    workers: dict[str, Any] = {}
    if api_up:
        workers, worker_warnings = asyncio.run(_server_workers(settings))
        warnings += worker_warnings
    return {
        "ok": not problems,
        "api_url": settings.api_url,
        "ui_url": settings.ui_url,
        "api_ready": api_up,
        "api": api_detail,
        "database": "embedded" if settings.embedded else redacted(settings.database_url or ""),
        "components": found,
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
    shown = [*workers, *needed, settings.work_pool, settings.agent.pool, settings.browser.pool]
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


def _component_states(settings: Settings) -> dict[str, dict[str, Any]]:
    """supervisord, then every program `up` runs or supervisord knows: its state, pid, uptime,
    automatic restarts since `up`, the crash loop's reason, and whether `up` starts it."""
    supervised = Supervisor(_run_dir(settings))
    now = time.time()
    state, pid = supervised.process.state()
    found: dict[str, dict[str, Any]] = {
        "supervisord": _entry(state, pid, None, Record(), expected=True)
    }
    programs = supervised.programs() if state == "running" and supervised.answering() else {}
    records = read_records(supervised.run_dir)
    expected = [p.name for p in _programs(settings)]
    for name in dict.fromkeys([*expected, *programs]):
        info, record = programs.get(name), records.get(name, Record())
        shown = info.state.value if info else "stopped"
        if record.crash_loop and shown in ("stopped", "fatal"):
            shown = "crash-loop"
        uptime = round(now - info.started_at) if info and info.started_at else None
        found[name] = _entry(shown, info.pid if info else None, uptime, record, name in expected)
    return found


def _entry(
    state: str, pid: int | None, uptime: int | None, record: Record, expected: bool
) -> dict[str, Any]:
    return {
        "state": state,
        "pid": pid,
        "uptime_seconds": uptime,
        "restarts": record.restarts,
        "crash_loop": record.crash_loop,
        "expected": expected,
    }
