"""The gate: the worker credential does what a residential worker needs and nothing else.

Real gate process, real Prefect server, real workers polling through the gate (the job tests
prove their own calls pass end to end; here each forbidden call is tried by hand)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import FlowRun, State
from prefect.exceptions import ObjectAlreadyExists
from prefect.states import Running, Scheduled

from automates.server.client import prefect_client
from tests.fixtures.browser_layer import Gate, Residential, auth, start_gate, stop

FORBIDDEN = [
    ("POST", "/api/deployments/", {"name": "evil", "flow_id": str(uuid.uuid4())}),
    ("PATCH", "/api/deployments/{deployment}", {"description": "pwned"}),
    ("DELETE", "/api/deployments/{deployment}", None),
    ("POST", "/api/deployments/{deployment}/create_flow_run", {}),
    ("POST", "/api/block_documents/", {"name": "x", "data": {}}),
    ("POST", "/api/block_documents/filter", {}),
    ("POST", "/api/variables/", {"name": "x", "value": "y"}),
    ("POST", "/api/variables/filter", {}),
    ("POST", "/api/work_pools/", {"name": "mine", "type": "process"}),
    ("PATCH", "/api/work_pools/residential", {"description": "x"}),
    ("GET", "/api/work_pools/elsewhere", None),
    ("POST", "/api/work_pools/elsewhere/get_scheduled_flow_runs", {}),
    ("POST", "/api/work_pools/elsewhere/workers/heartbeat", {"name": "w"}),
    ("GET", "/api/flow_runs/{foreign_run}", None),
    ("POST", "/api/flow_runs/{foreign_run}/set_state", {"state": {"type": "CANCELLED"}}),
    ("POST", "/api/flow_runs/", {"flow_id": str(uuid.uuid4())}),
    ("POST", "/api/automations/", {}),
    ("POST", "/api/concurrency_limits/", {}),
    ("GET", "/api/admin/settings", None),
    # Issue 12: nothing of other pools, no secrets, no job variables, no run creation.
    ("GET", "/api/deployments/{foreign_deployment}", None),
    ("POST", "/api/deployments/filter", {}),
    ("PATCH", "/api/flow_runs/{foreign_run}", {"name": "renamed"}),
    ("PATCH", "/api/flow_runs/{foreign_run}/labels", {"x": "y"}),
    ("PATCH", "/api/flow_runs/{own_run}", {"job_variables": {"command": "id"}}),
    ("PATCH", "/api/flow_runs/{own_run}", {"parameters": {"job_id": "x"}, "tags": ["x"]}),
    ("GET", "/api/block_documents/{foreign_run}?include_secrets=true", None),
    ("POST", "/api/block_documents/filter?include_secrets=true", {}),
    ("GET", "/api/variables/name/anything", None),
    ("POST", "/api/artifacts/filter", {}),
    ("POST", "/api/task_runs/", {"flow_run_id": "{own_run}", "task_key": "x"}),
    (
        "POST",
        "/api/logs/",
        [{"name": "x", "level": 20, "message": "m", "timestamp": "2026-01-01T00:00:00Z"}],
    ),
]


async def _foreign_objects(api_url: str) -> dict[str, str]:
    """A deployment of the residential pool, and a flow run of another pool."""
    async with prefect_client(api_url) as client:
        own = await client.read_deployment_by_name("browser-job/browser-job")
        with contextlib.suppress(ObjectAlreadyExists):  # from an earlier test
            await client.create_work_pool(WorkPoolCreate(name="elsewhere", type="process"))
        flow_id = await client.create_flow_from_name("foreign")
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name="foreign", work_pool_name="elsewhere"
        )
        run = await client.create_flow_run_from_deployment(deployment_id)
        # A run of the residential pool no worker takes (it is due tomorrow).
        tomorrow: State[Any] = Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1))
        own_run = await client.create_flow_run_from_deployment(
            own.id, parameters={"job_id": str(uuid.uuid4())}, state=tomorrow
        )
    return {
        "deployment": str(own.id),
        "foreign_deployment": str(deployment_id),
        "foreign_run": str(run.id),
        "own_run": str(own_run.id),
    }


async def _server_snapshot(api_url: str) -> tuple[object, ...]:
    async with prefect_client(api_url) as client:
        deployments = sorted((d.name, d.description or "") for d in await client.read_deployments())
        variables = await client.read_variables()
        blocks = len(await client.read_block_documents())
        pools = sorted(p.name for p in await client.read_work_pools())
    return deployments, len(variables), blocks, pools


async def _flow_run(api_url: str, run_id: str) -> FlowRun:
    async with prefect_client(api_url) as client:
        return await client.read_flow_run(uuid.UUID(run_id))


@pytest.fixture
def foreign(browser_layer: Residential) -> dict[str, str]:
    return asyncio.run(_foreign_objects(browser_layer.settings.api_url))


def test_each_forbidden_call_is_refused_and_changes_nothing(
    browser_layer: Residential, foreign: dict[str, str]
) -> None:
    api_url = browser_layer.settings.api_url
    before = asyncio.run(_server_snapshot(api_url))
    own_run_before = asyncio.run(_flow_run(api_url, foreign["own_run"]))
    with httpx.Client(base_url=browser_layer.gate.url, headers=auth(browser_layer.gate)) as gate:
        for method, path, body in FORBIDDEN:
            if isinstance(body, dict):
                body = {
                    k: v.format(**foreign) if isinstance(v, str) else v for k, v in body.items()
                }
            answer = gate.request(method, path.format(**foreign), json=body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert "refused by the gate" in answer.json()["detail"]
    assert asyncio.run(_server_snapshot(api_url)) == before
    own_run_after = asyncio.run(_flow_run(api_url, foreign["own_run"]))
    assert own_run_after.job_variables == own_run_before.job_variables
    assert (own_run_after.parameters, own_run_after.tags) == (
        own_run_before.parameters,
        own_run_before.tags,
    )


def test_the_worker_calls_are_allowed_and_its_filters_narrowed_to_its_pool(
    browser_layer: Residential, foreign: dict[str, str]
) -> None:
    with httpx.Client(base_url=browser_layer.gate.url, headers=auth(browser_layer.gate)) as gate:
        assert gate.get("/api/work_pools/residential").json()["name"] == "residential"
        assert gate.get(f"/api/deployments/{foreign['deployment']}").status_code == 200
        polled = gate.post("/api/work_pools/residential/get_scheduled_flow_runs", json={})
        assert polled.status_code == 200
        # Asked for every run, the worker sees only its pool's: not the foreign one.
        runs = gate.post("/api/flow_runs/filter", json={}).json()
        assert foreign["foreign_run"] not in {run["id"] for run in runs}
        assert all(run["work_pool_name"] == "residential" for run in runs)
    # The real workers poll and beat through the gate, and none of their calls is refused.
    deadline = time.monotonic() + 60
    while "/residential/get_scheduled_flow_runs -> 200" not in browser_layer.gate.log.read_text():
        assert time.monotonic() < deadline, "no worker polled through the gate"
        time.sleep(0.5)
    lines = browser_layer.gate.log.read_text().splitlines()
    pool_lines = [
        line
        for line in lines
        if "/api/work_pools/residential" in line and "PATCH" not in line  # ours, refused above
    ]
    assert pool_lines and all(line.rsplit("-> ", 1)[1].startswith("2") for line in pool_lines)


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic abc"])
def test_a_call_without_the_worker_credential_is_refused(
    browser_layer: Residential, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    answer = httpx.get(f"{browser_layer.gate.url}/api/work_pools/residential", headers=headers)
    assert answer.status_code == 401
    claim = httpx.post(
        f"{browser_layer.gate.url}/automates/browser/jobs/{uuid.uuid4()}/claim",
        json={"host": "x"},
        headers=headers,
    )
    assert claim.status_code == 401


def _line(run_id: str, message: str) -> dict[str, object]:
    stamp = datetime.now(UTC).isoformat()
    return {
        "name": "forged",
        "level": 20,
        "message": message,
        "timestamp": stamp,
        "flow_run_id": run_id,
    }


async def _messages(api_url: str, run_id: str) -> list[str]:
    async with prefect_client(api_url) as client:
        logs = await client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(run_id)]))
        )
    return [log.message for log in logs]


async def _running(api_url: str, run_id: str) -> None:
    async with prefect_client(api_url) as client:
        await client.set_flow_run_state(uuid.UUID(run_id), Running(), force=True)


def test_logs_are_written_only_for_runs_the_pool_holds(
    browser_layer: Residential, foreign: dict[str, str]
) -> None:
    """Issue 12 finding 6: a forged line for another pool's run never reaches its log."""
    api_url = browser_layer.settings.api_url
    # Both runs Running: the other pool's is still not the worker's; the own one is held.
    asyncio.run(_running(api_url, foreign["foreign_run"]))
    asyncio.run(_running(api_url, foreign["own_run"]))
    with httpx.Client(base_url=browser_layer.gate.url, headers=auth(browser_layer.gate)) as gate:
        forged = gate.post("/api/logs/", json=[_line(foreign["foreign_run"], "forged line")])
        assert forged.status_code == 403
        assert "not in pool 'residential'" in forged.json()["detail"]
        mixed = gate.post(
            "/api/logs/",
            json=[
                _line(foreign["own_run"], "held line"),
                _line(foreign["foreign_run"], "forged 2"),
            ],
        )
        assert mixed.status_code == 403
        assert foreign["foreign_run"] in mixed.json()["detail"]
        assert "other lines were written" in mixed.json()["detail"]
        held = gate.post("/api/logs/", json=[_line(foreign["own_run"], "second held line")])
        assert held.status_code == 201, held.text
    # The gate forwards before it answers: the server has whatever it will ever have.
    assert asyncio.run(_messages(api_url, foreign["foreign_run"])) == []
    assert sorted(asyncio.run(_messages(api_url, foreign["own_run"]))) == [
        "held line",
        "second held line",
    ]


def _sixty_megabytes() -> Iterator[bytes]:
    chunk = b"[" * (64 * 1024)
    for _ in range(60 * 16):
        yield chunk


def test_an_oversized_body_is_refused_unread(browser_layer: Residential) -> None:
    headers = {**auth(browser_layer.gate), "Content-Length": str(60 * 1024 * 1024)}
    with httpx.Client(base_url=browser_layer.gate.url, timeout=120) as gate:
        declared = gate.post("/api/logs/", headers=headers, content=_sixty_megabytes())
        assert declared.status_code == 413
        chunked = gate.post(
            "/api/logs/", headers=auth(browser_layer.gate), content=_sixty_megabytes()
        )
        assert chunked.status_code == 413
        assert gate.get("/api/health", headers=auth(browser_layer.gate)).status_code == 200


@pytest.fixture
def strict_gate(browser_layer: Residential, tmp_path: Path) -> Iterator[Gate]:
    """A second gate, with a small rate limit (the session's serves the real workers)."""
    gate = start_gate(browser_layer.settings, tmp_path, AUTOMATES_GATE_RATE_LIMIT="5/hour")
    yield gate
    stop(gate.process)


def test_a_too_fast_caller_of_the_gate_gets_429(strict_gate: Gate) -> None:
    # start_gate waited for one health answer: 4 more are allowed this hour.
    with httpx.Client(base_url=strict_gate.url, headers=auth(strict_gate)) as gate:
        answers = [gate.get("/api/health").status_code for _ in range(5)]
        assert answers == [200, 200, 200, 200, 429]
        refused = gate.get("/api/health")
        assert 0 < int(refused.headers["Retry-After"]) <= 3600
    # Counted before the credential is checked: guessing it is slowed down as well.
    wrong = httpx.get(f"{strict_gate.url}/api/health", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 429
