"""The heartbeat's rules: the /fail URL, which runs are late, which pools lack a live worker,
and what a ping sends (against httpx's in-memory transport, standing in for the service)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun, State, Worker, WorkerStatus
from prefect.states import AwaitingRetry, Late, Pending, Running, Scheduled
from pydantic import SecretStr

from automates.alerts.heartbeat import (
    MAX_BODY_BYTES,
    Health,
    fail_url,
    heartbeat_loop,
    late_problems,
    late_runs,
    ping,
    pool_problems,
    pools_needed,
    worker_live,
)
from automates.settings import Settings
from automates.settings.groups import HeartbeatSettings

NOW = datetime(2026, 12, 3, 10, 47, 12, tzinfo=UTC)
BOUND = timedelta(seconds=300)
TOKEN = "tok-9f3c51e2"
URL = f"https://hc-ping.example/{TOKEN}?rid=7"


def _run(
    state: State[Any],
    deployment: uuid.UUID | None = None,
    *,
    expected: datetime | None = None,
    next_at: datetime | None = None,
) -> FlowRun:
    return FlowRun(
        flow_id=uuid.uuid4(),
        deployment_id=deployment,
        state=state,
        expected_start_time=expected,  # type: ignore[arg-type]
        next_scheduled_start_time=next_at,  # type: ignore[arg-type]
    )


def test_the_fail_url_adds_fail_to_the_path_and_keeps_the_query() -> None:
    assert fail_url(URL) == f"https://hc-ping.example/{TOKEN}/fail?rid=7"
    assert fail_url("https://hc-ping.example/abc/") == "https://hc-ping.example/abc/fail"
    assert fail_url("https://cronitor.link/p/key/job") == "https://cronitor.link/p/key/job/fail"


def test_a_run_waiting_beyond_the_bound_is_late() -> None:
    long_ago = NOW - timedelta(seconds=301)
    late = _run(Late(scheduled_time=long_ago), next_at=long_ago)
    scheduled = _run(Scheduled(scheduled_time=long_ago), next_at=long_ago)
    assert late_runs([late, scheduled], NOW, BOUND) == [late, scheduled]


def test_a_run_within_the_bound_or_no_longer_waiting_is_not_late() -> None:
    recent = NOW - timedelta(seconds=299)
    long_ago = NOW - timedelta(hours=2)
    runs = [
        _run(Scheduled(scheduled_time=recent), next_at=recent),
        _run(Pending(), expected=long_ago),
        _run(Running(), expected=long_ago),
    ]
    assert late_runs(runs, NOW, BOUND) == []


def test_a_run_moved_to_a_later_time_is_judged_by_that_time_not_its_first() -> None:
    # Quiet hours, a retry or a re-submission move the run; its first time stays behind.
    later = NOW + timedelta(hours=1)
    moved = _run(
        Scheduled(scheduled_time=later),
        expected=NOW - timedelta(hours=5),
        next_at=later,
    )
    retrying = _run(AwaitingRetry(scheduled_time=NOW), expected=NOW - timedelta(days=1))
    assert late_runs([moved, retrying], NOW, BOUND) == []


def test_late_runs_are_reported_per_deployment_with_the_oldest() -> None:
    nightly, hourly = uuid.uuid4(), uuid.uuid4()
    runs = [
        _run(Late(), nightly, next_at=NOW - timedelta(seconds=400)),
        _run(Late(), nightly, next_at=NOW - timedelta(seconds=3600)),
        _run(Late(), hourly, next_at=NOW - timedelta(seconds=900)),
    ]
    names = {nightly: "nightly-report", hourly: "hourly-sync"}
    assert late_problems(runs, names, NOW, BOUND) == [
        "scheduler: deployment 'hourly-sync' has 1 run(s) not started, the oldest 900 s past "
        "its scheduled time (bound: 300 s)",
        "scheduler: deployment 'nightly-report' has 2 run(s) not started, the oldest 3600 s "
        "past its scheduled time (bound: 300 s)",
    ]


def test_the_pools_needed_are_those_of_managed_deployments_and_the_layers_own() -> None:
    needed = pools_needed([("b", "warm"), ("a", "warm"), ("c", None), ("d", "local")], "local")
    assert needed == {"local": ["d"], "warm": ["a", "b"]}
    assert pools_needed([], "local") == {"local": []}


def test_a_worker_is_live_only_online_and_with_a_recent_heartbeat() -> None:
    def worker(status: WorkerStatus, age: float | None, every: int | None = 30) -> Worker:
        beat = None if age is None else NOW - timedelta(seconds=age)
        return Worker(
            name="w",
            work_pool_id=uuid.uuid4(),
            status=status,
            last_heartbeat_time=beat,
            heartbeat_interval_seconds=every,
        )

    assert worker_live(worker(WorkerStatus.ONLINE, 5), NOW)
    assert worker_live(worker(WorkerStatus.ONLINE, 90), NOW)
    # Three missed heartbeats: the foreman would mark it offline on its next pass.
    assert not worker_live(worker(WorkerStatus.ONLINE, 91), NOW)
    assert not worker_live(worker(WorkerStatus.ONLINE, 200, every=None), NOW)
    assert worker_live(worker(WorkerStatus.ONLINE, 200, every=120), NOW)
    assert not worker_live(worker(WorkerStatus.OFFLINE, 1), NOW)
    assert not worker_live(worker(WorkerStatus.ONLINE, None), NOW)


def test_each_needed_pool_without_a_live_worker_is_named() -> None:
    needed = {"local": [], "warm": ["a", "b"], "gone": ["c"], "served": ["d"]}
    problems = pool_problems(needed, ["local", "warm", "served"], {"served": 1, "warm": 0})
    assert problems == [
        "workers: work pool 'gone' does not exist (deployments 'c')",
        "workers: work pool 'local' has no online worker (the layer's work pool)",
        "workers: work pool 'warm' has no online worker (deployments 'a', 'b')",
    ]


def test_many_deployments_of_a_pool_are_counted_past_a_few() -> None:
    names = [f"d{i}" for i in range(8)]
    [problem] = pool_problems({"warm": names}, ["warm"], {})
    assert problem.endswith("'d3', 'd4' and 3 more)")


def test_health_is_ok_only_without_problems_and_its_body_is_bounded() -> None:
    assert Health().ok
    assert not Health(("x",)).ok
    huge = Health(tuple("é" * 1000 for _ in range(20)))
    assert len(huge.body().encode()) <= MAX_BODY_BYTES
    assert huge.body().startswith("é" * 1000 + "\n")


def _send(
    health: Health, handler: Callable[[httpx.Request], httpx.Response]
) -> tuple[bool, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def go() -> bool:
        transport = httpx.MockTransport(record)
        async with httpx.AsyncClient(transport=transport) as client:
            return await ping(
                Settings(heartbeat=HeartbeatSettings(url=SecretStr(URL))), health, client
            )

    return asyncio.run(go()), seen


def test_a_healthy_ping_gets_the_plain_url() -> None:
    sent, [request] = _send(Health(), lambda _: httpx.Response(200, text="OK"))
    assert sent
    assert request.method == "GET"
    assert str(request.url) == URL


def test_an_unhealthy_ping_posts_the_reasons_to_fail() -> None:
    health = Health(("workers: work pool 'warm' has no online worker", "scheduler: x"))
    sent, [request] = _send(health, lambda _: httpx.Response(200, text="OK"))
    assert sent
    assert (request.method, str(request.url)) == ("POST", fail_url(URL))
    assert request.headers["content-type"].startswith("text/plain")
    assert (
        request.content.decode() == "workers: work pool 'warm' has no online worker\nscheduler: x"
    )


def test_a_failed_ping_is_logged_without_the_url_and_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    sent, _ = _send(Health(("x",)), unreachable)
    assert not sent
    refused, _ = _send(Health(), lambda request: httpx.Response(404, text=str(request.url)))
    assert not refused
    assert "heartbeat ping not sent (ConnectError)" in caplog.text
    assert "heartbeat ping refused (HTTP 404)" in caplog.text
    # httpx logs each request with its URL: blanked out.
    assert "HTTP Request: GET [heartbeat url]" in caplog.text
    assert TOKEN not in caplog.text


def test_the_loop_returns_at_once_without_a_url() -> None:
    async def go() -> None:
        await asyncio.wait_for(heartbeat_loop(Settings(), asyncio.Event()), timeout=5)

    asyncio.run(go())
