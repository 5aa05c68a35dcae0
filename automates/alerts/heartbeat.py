"""The outbound dead-man heartbeat (the healthchecks.io / Cronitor convention).

Every alert the layer sends needs the layer alive to send it; a host that is down, or a
scheduler that stopped, says nothing. So the layer pings a URL that someone else watches:
the plain URL every `heartbeat_interval_seconds` while it is healthy, the URL's `/fail`
variant with the reasons as a plain-text body while it is not. Whoever owns the URL hears
when the pings stop or fail.

Healthy means all of:

- the Prefect server answers `/ready` (it reaches its database);
- nothing is late beyond `heartbeat_late_seconds`: no run of a managed deployment still waits
  in a Scheduled state (Scheduled, Late, AwaitingRetry) that long past its scheduled time;
- every work pool with a managed deployment, and the layer's own work pool, has a live worker.

The ping URL is a credential (anyone holding it can ping for us), so it never appears in a
log line, an exception or the reason text: logs say "heartbeat ping sent".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import httpx
from prefect.client.schemas.objects import FlowRun, Worker, WorkerStatus

from automates.errors import ServerError
from automates.registry.model import MANAGED_TAG
from automates.server.client import api_ready, prefect_client
from automates.server.deployed import read_all
from automates.settings import Settings

logger = logging.getLogger("automates.heartbeat")

PING_TIMEOUT_SECONDS = 10.0
# A server that answers /ready but then hangs must still produce a /fail, not a silent round.
CHECK_TIMEOUT_SECONDS = 30.0
MAX_BODY_BYTES = 10_000  # healthchecks.io keeps the first 10 kB of a ping body
MAX_NAMED = 5  # deployments named per problem; the rest are counted
# Prefect's foreman rule for an offline worker (3 missed heartbeats, 30 s when the worker
# gave no interval), applied here too: the foreman runs only every 15 s, and may be off.
INACTIVITY_MULTIPLE = 3
FALLBACK_WORKER_HEARTBEAT_SECONDS = 30


@dataclass(frozen=True)
class Health:
    """What is wrong with the layer, one line per problem; nothing when healthy."""

    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def body(self) -> str:
        """The reasons as a /fail body, cut to what the ping service keeps."""
        text = "\n".join(self.problems).encode()[:MAX_BODY_BYTES]
        return text.decode(errors="ignore")


def fail_url(url: str) -> str:
    """The /fail variant of a ping URL: its path + "/fail", the query kept."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))


def scheduled_at(run: FlowRun) -> datetime | None:
    """When a waiting run is due now. Not `expected_start_time`: that is its first scheduled
    time, and a run moved on since (quiet hours, a retry, a re-submission) is not late."""
    if run.next_scheduled_start_time is not None:
        return run.next_scheduled_start_time
    if run.state is not None and run.state.state_details.scheduled_time is not None:
        return run.state.state_details.scheduled_time
    return run.expected_start_time


def late_runs(runs: Iterable[FlowRun], now: datetime, bound: timedelta) -> list[FlowRun]:
    """The runs still waiting in a Scheduled state more than `bound` past their time."""
    return [
        run
        for run in runs
        if run.state is not None
        and run.state.is_scheduled()
        and (at := scheduled_at(run)) is not None
        and now - at > bound
    ]


def late_problems(
    late: Iterable[FlowRun], deployments: Mapping[UUID, str], now: datetime, bound: timedelta
) -> list[str]:
    """One line per deployment with late runs: how many, and how late the oldest is."""
    lateness: dict[str, list[timedelta]] = defaultdict(list)
    for run in late:
        name = deployments.get(run.deployment_id, str(run.deployment_id))  # type: ignore[arg-type]
        lateness[name].append(now - (scheduled_at(run) or now))
    return [
        f"scheduler: deployment {name!r} has {len(late_by)} run(s) not started, the oldest "
        f"{int(max(late_by).total_seconds())} s past its scheduled time "
        f"(bound: {int(bound.total_seconds())} s)"
        for name, late_by in sorted(lateness.items())
    ]


def pools_needed(
    deployments: Iterable[tuple[str, str | None]], layer_pool: str
) -> dict[str, list[str]]:
    """Work pool → the managed deployments it serves, from (deployment, pool) pairs. The
    layer's own pool is always needed: `up` starts a worker on it."""
    needed: dict[str, list[str]] = {layer_pool: []}
    for name, pool in deployments:
        if pool:
            needed.setdefault(pool, []).append(name)
    return {pool: sorted(names) for pool, names in needed.items()}


def worker_live(worker: Worker, now: datetime) -> bool:
    """Online, with a heartbeat recent enough that Prefect's foreman would keep it so."""
    if worker.status != WorkerStatus.ONLINE or worker.last_heartbeat_time is None:
        return False
    every = worker.heartbeat_interval_seconds or FALLBACK_WORKER_HEARTBEAT_SECONDS
    return now - worker.last_heartbeat_time <= timedelta(seconds=every * INACTIVITY_MULTIPLE)


def pool_problems(
    needed: Mapping[str, Sequence[str]], existing: Iterable[str], live: Mapping[str, int]
) -> list[str]:
    """One line per needed pool that does not exist or has no live worker."""
    existing = set(existing)
    problems = []
    for pool, names in sorted(needed.items()):
        serves = f"deployments {_some(names)}" if names else "the layer's work pool"
        if pool not in existing:
            problems.append(f"workers: work pool {pool!r} does not exist ({serves})")
        elif not live.get(pool):
            problems.append(f"workers: work pool {pool!r} has no online worker ({serves})")
    return problems


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


async def check_health(settings: Settings) -> Health:
    """Ask the server, its scheduler and its workers; never raises for a server fault."""
    server = f"server: the Prefect API at {_without_credentials(settings.api_url)}"
    ready, why = await api_ready(settings.api_url)
    if not ready:
        return Health((f"{server} is {why}",))
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return Health(tuple(await _read_problems(settings)))
    except TimeoutError:
        return Health((f"{server} did not answer within {CHECK_TIMEOUT_SECONDS:.0f} s",))
    except (ServerError, httpx.HTTPError) as error:
        return Health((f"{server} failed to answer ({type(error).__name__})",))


async def _read_problems(settings: Settings) -> list[str]:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterTags,
        FlowRunFilter,
        FlowRunFilterNextScheduledStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkerFilter,
        WorkerFilterStatus,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    now = datetime.now(UTC)
    bound = timedelta(seconds=settings.heartbeat.late_seconds)
    managed = DeploymentFilter(tags=DeploymentFilterTags(all_=[MANAGED_TAG]))
    # Only runs already past the bound: future runs (up to 100 per deployment) stay unread.
    overdue = FlowRunFilterNextScheduledStartTime(before_=now - bound)  # type: ignore[arg-type]
    waiting = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
        next_scheduled_start_time=overdue,
    )
    online = WorkerFilter(status=WorkerFilterStatus(any_=[WorkerStatus.ONLINE.value]))
    async with prefect_client(settings.api_url) as client:
        deployments = await read_all(client.read_deployments, deployment_filter=managed)
        runs = await read_all(
            client.read_flow_runs,
            flow_run_filter=waiting,
            deployment_filter=managed,
            sort=FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC,
        )
        needed = pools_needed(((d.name, d.work_pool_name) for d in deployments), settings.work_pool)
        pools = await read_all(
            client.read_work_pools,
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=sorted(needed))),
        )
        live: dict[str, int] = {}
        for pool in pools:
            workers = await read_all(
                client.read_workers_for_work_pool, work_pool_name=pool.name, worker_filter=online
            )
            live[pool.name] = sum(worker_live(worker, now) for worker in workers)
    names = {d.id: d.name for d in deployments}
    late = late_problems(late_runs(runs, now, bound), names, now, bound)
    return late + pool_problems(needed, (pool.name for pool in pools), live)


class _Redact(logging.Filter):
    """Blanks the ping URL out of httpx's own request log line ("HTTP Request: GET <url>")."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in sorted(self.secrets, key=len, reverse=True):
                message = message.replace(secret, "[heartbeat url]")
            record.msg, record.args = message, None
        return True


_REDACT = _Redact()


def _hide_from_httpx_log(*urls: str) -> None:
    for url in urls:
        _REDACT.secrets.add(url)
        with contextlib.suppress(httpx.InvalidURL):
            _REDACT.secrets.add(str(httpx.URL(url)))  # the form httpx logs
    logging.getLogger("httpx").addFilter(_REDACT)  # adding it again is a no-op


async def ping(settings: Settings, health: Health, client: httpx.AsyncClient) -> bool:
    """Ping the URL when healthy, its /fail variant with the reasons when not; whether the
    ping service took it. A failure is logged, never raised: the next interval tries again."""
    if settings.heartbeat.url is None:
        return False
    url = settings.heartbeat.url.get_secret_value()
    failing = fail_url(url)
    _hide_from_httpx_log(url, failing)
    try:
        if health.ok:
            response = await client.get(url, timeout=PING_TIMEOUT_SECONDS)
        else:
            response = await client.post(
                failing,
                content=health.body().encode(),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=PING_TIMEOUT_SECONDS,
            )
    # Any error: httpx's messages may quote the URL, so only the error's type is told.
    except Exception as error:
        logger.warning(
            "heartbeat ping not sent (%s); trying again at the next interval",
            type(error).__name__,
        )
        return False
    if not response.is_success:
        logger.warning(
            "heartbeat ping refused (HTTP %d); trying again at the next interval",
            response.status_code,
        )
        return False
    if health.ok:
        logger.info("heartbeat ping sent")
    else:
        logger.warning("heartbeat /fail sent: %s", "; ".join(health.problems))
    return True


async def heartbeat_loop(settings: Settings, stop: asyncio.Event) -> None:
    """Check and ping every interval until `stop` is set; nothing to do without a URL."""
    if settings.heartbeat.url is None:
        return
    interval = settings.heartbeat.interval_seconds
    async with httpx.AsyncClient(timeout=PING_TIMEOUT_SECONDS) as client:
        while not stop.is_set():
            started = time.monotonic()
            await _unless_stopped(_beat(settings, client), stop)
            # A fixed cadence: a slow round does not push the next one back.
            left = max(0.0, interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), left)


async def _beat(settings: Settings, client: httpx.AsyncClient) -> None:
    try:
        health = await check_health(settings)
    except Exception as error:
        # A fault of ours still reaches the watcher, as a /fail, instead of ending the pings.
        logger.exception("heartbeat health check failed")
        health = Health((f"heartbeat: the health check failed ({type(error).__name__})",))
    await ping(settings, health, client)


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run `work` to its end, or cancel it as soon as `stop` is set."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        task.cancel()
        stopping.cancel()
        await asyncio.wait({task, stopping})
