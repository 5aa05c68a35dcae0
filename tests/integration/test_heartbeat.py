"""The outbound heartbeat against a real Prefect server and a real worker, pinging a local
HTTP sink that stands in for healthchecks.io."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import State
from prefect.states import Scheduled
from pydantic import SecretStr

from automates.alerts.heartbeat import Health, check_health, heartbeat_loop, ping
from automates.registry.model import MANAGED_TAG
from automates.server.client import prefect_client
from automates.settings import Settings
from automates.settings.groups import HeartbeatSettings, ServerSettings
from tests.conftest import REPO, free_port
from tests.fixtures.loopback_http import QuietHandler, serve_http
from tests.fixtures.servers import layer_settings, wait_for

TOKEN = "hb-secret-5d1e7a"
PING_PATH = f"/ping/{TOKEN}"
QUERY = "?rid=hb"
DEADLINE = 120.0  # a worker's start and a round trip, on a loaded 2-core machine


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    body: str


class Sink:
    """Records every request; answers the queued statuses first, then 200. While `hold` is
    clear, requests are recorded but not answered (a ping service that hangs)."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.statuses: list[int] = []
        self.changed = threading.Condition()
        self.hold = threading.Event()
        self.hold.set()
        self.url = ""  # the ping URL, once served
        sink = self

        class Handler(QuietHandler):  # quiet: its request line holds the token
            def _record(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size).decode()
                with sink.changed:
                    sink.hits.append(Hit(self.command, self.path, body))
                    status = sink.statuses.pop(0) if sink.statuses else 200
                    sink.changed.notify_all()
                sink.hold.wait(DEADLINE)
                self.answer(status, b"OK")

            do_GET = do_POST = _record

        self.handler = Handler

    def wait(self, enough: Callable[[list[Hit]], bool], what: str) -> list[Hit]:
        with self.changed:
            if not self.changed.wait_for(lambda: enough(self.hits), timeout=DEADLINE):
                raise AssertionError(f"the sink never saw {what}; it saw {self.hits}")
            return list(self.hits)


@pytest.fixture
def sink() -> Iterator[Sink]:
    found = Sink()
    with serve_http(found.handler) as base:
        found.url = f"{base}{PING_PATH}{QUERY}"
        yield found
        found.hold.set()  # a request still held ends before the server closes


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log line of the test, at every level; none may hold the ping URL's token."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    assert TOKEN not in caplog.text


def _ping(settings: Settings, health: Health) -> bool:
    async def go() -> bool:
        async with httpx.AsyncClient() as client:
            return await ping(settings, health, client)

    return asyncio.run(go())


def _healthy(settings: Settings) -> Health:
    """The first healthy answer: the worker registers with the server some seconds after start."""
    return wait_for(
        lambda: health if (health := asyncio.run(check_health(settings))).ok else None,
        DEADLINE,
        "a healthy layer",
    )


def _idle_layer(server: Settings, sink: Sink) -> tuple[str, Settings]:
    """A process work pool that no worker serves, and the layer's settings with it as the
    layer's pool, pinging the sink."""
    pool = f"idle-{os.urandom(3).hex()}"

    async def create() -> None:
        async with prefect_client(server.api_url) as client:
            await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))

    asyncio.run(create())
    heartbeat = HeartbeatSettings(url=SecretStr(sink.url))
    return pool, layer_settings(server, work_pool=pool, heartbeat=heartbeat)


def _fail_ping(settings: Settings, health: Health, sink: Sink) -> Hit:
    """The ping of an unhealthy layer: taken by the ping service, the one request it saw, a
    POST to the /fail variant of the URL."""
    assert _ping(settings, health)
    [hit] = sink.wait(lambda hits: len(hits) >= 1, "a /fail ping")
    assert (hit.method, hit.path) == ("POST", f"{PING_PATH}/fail{QUERY}")
    return hit


def test_a_healthy_layer_pings_the_plain_url_every_interval(
    server: Settings, worker: str, sink: Sink, logs: pytest.LogCaptureFixture
) -> None:
    settings = layer_settings(
        server,
        work_pool=worker,
        heartbeat=HeartbeatSettings(url=SecretStr(sink.url), interval_seconds=5),
    )
    _healthy(settings)
    sink.statuses.append(503)  # the ping service fails once: the next interval tries again

    async def loop_until_three_pings() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(heartbeat_loop(settings, stop))
        # A third ping begins only once the second was answered and logged.
        hits = await asyncio.to_thread(sink.wait, lambda hits: len(hits) >= 3, "three pings")
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        assert [(hit.method, hit.path) for hit in hits[:3]] == [("GET", PING_PATH + QUERY)] * 3

    asyncio.run(loop_until_three_pings())
    assert "heartbeat ping refused (HTTP 503)" in logs.text
    assert "heartbeat ping sent" in logs.text


def test_a_pool_without_a_live_worker_is_named_in_a_fail_ping(
    server: Settings, sink: Sink, logs: pytest.LogCaptureFixture
) -> None:
    pool, settings = _idle_layer(server, sink)
    health = asyncio.run(check_health(settings))
    assert health.problems == (
        f"workers: work pool {pool!r} has no online worker (the layer's work pool)",
    )
    hit = _fail_ping(settings, health, sink)
    assert pool in hit.body
    assert f"heartbeat /fail sent: workers: work pool {pool!r}" in logs.text


async def _runs_of_two_deployments(api_url: str, pool: str) -> None:
    """A managed deployment with a run an hour late, a run moved an hour ahead and a run due
    now; a foreign one with a late run. No worker serves their pool, so none ever starts."""
    now = datetime.now(UTC)
    async with prefect_client(api_url) as client:
        flow_id = await client.create_flow_from_name("heartbeat-probe")
        managed = await client.create_deployment(
            flow_id=flow_id, name="hb-managed", tags=[MANAGED_TAG], work_pool_name=pool
        )
        foreign = await client.create_deployment(
            flow_id=flow_id, name="hb-foreign", work_pool_name=pool
        )
        an_hour_ago: State[Any] = Scheduled(scheduled_time=now - timedelta(hours=1))
        await client.create_flow_run_from_deployment(managed, state=an_hour_ago)
        await client.create_flow_run_from_deployment(foreign, state=an_hour_ago)
        await client.create_flow_run_from_deployment(managed, state=Scheduled(scheduled_time=now))
        # As quiet hours do: the run keeps its first expected time, an hour ago.
        moved = await client.create_flow_run_from_deployment(managed, state=an_hour_ago)
        later: State[Any] = Scheduled(scheduled_time=now + timedelta(hours=1))
        await client.set_flow_run_state(moved.id, later, force=True)


def test_a_run_late_beyond_the_bound_is_named_in_a_fail_ping(
    server: Settings, sink: Sink, logs: pytest.LogCaptureFixture
) -> None:
    pool, settings = _idle_layer(server, sink)
    asyncio.run(_runs_of_two_deployments(settings.api_url, pool))
    health = asyncio.run(check_health(settings))
    [late, workerless] = health.problems
    assert late.startswith("scheduler: deployment 'hb-managed' has 1 run(s) not started")
    assert "(bound: 300 s)" in late
    assert (
        workerless == f"workers: work pool {pool!r} has no online worker (deployments 'hb-managed')"
    )
    hit = _fail_ping(settings, health, sink)
    assert "hb-managed" in hit.body
    assert "hb-foreign" not in hit.body


def _stopped_server(url: str, **overrides: Any) -> Settings:
    """Settings whose Prefect API is a closed port: the shared server stays up for the others."""
    return Settings(
        project_root=REPO,
        server=ServerSettings(port=free_port()),
        heartbeat=HeartbeatSettings(url=SecretStr(url), **overrides),
    )


def test_a_stopped_server_is_named_in_a_fail_ping(
    sink: Sink, logs: pytest.LogCaptureFixture
) -> None:
    settings = _stopped_server(sink.url)
    health = asyncio.run(check_health(settings))
    assert health.problems == (
        f"server: the Prefect API at {settings.api_url} is unreachable (ConnectError)",
    )
    hit = _fail_ping(settings, health, sink)
    assert f"the Prefect API at {settings.api_url}" in hit.body


def test_an_unreachable_ping_service_is_logged_not_raised(logs: pytest.LogCaptureFixture) -> None:
    closed = f"http://127.0.0.1:{free_port()}{PING_PATH}{QUERY}"
    settings = _stopped_server(closed)
    assert not _ping(settings, asyncio.run(check_health(settings)))
    assert "heartbeat ping not sent (ConnectError)" in logs.text


def test_the_loop_returns_promptly_when_stopped_in_the_middle_of_a_ping(
    sink: Sink, logs: pytest.LogCaptureFixture
) -> None:
    sink.hold.clear()  # the ping service takes the request and never answers
    settings = _stopped_server(sink.url, interval_seconds=5)

    async def stop_while_pinging() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(heartbeat_loop(settings, stop))
        await asyncio.to_thread(sink.wait, lambda hits: len(hits) >= 1, "a ping")
        stop.set()
        # Well inside the ping's own 10 s timeout: the loop cancels its round.
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(stop_while_pinging())
