"""The gate: the worker credential does what a residential worker needs and nothing else.

Real gate process, real Prefect server, real workers polling through the gate (the job tests
prove their own calls pass end to end; here each forbidden call is tried by hand)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import httpx
import pytest
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from automates.server.client import prefect_client
from tests.fixtures.browser_layer import Residential, auth

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
    return {"deployment": str(own.id), "foreign_run": str(run.id)}


async def _server_snapshot(api_url: str) -> tuple[object, ...]:
    async with prefect_client(api_url) as client:
        deployments = sorted((d.name, d.description or "") for d in await client.read_deployments())
        variables = await client.read_variables()
        blocks = len(await client.read_block_documents())
        pools = sorted(p.name for p in await client.read_work_pools())
    return deployments, len(variables), blocks, pools


@pytest.fixture
def foreign(browser_layer: Residential) -> dict[str, str]:
    return asyncio.run(_foreign_objects(browser_layer.settings.api_url))


def test_each_forbidden_call_is_refused_and_changes_nothing(
    browser_layer: Residential, foreign: dict[str, str]
) -> None:
    api_url = browser_layer.settings.api_url
    before = asyncio.run(_server_snapshot(api_url))
    with httpx.Client(base_url=browser_layer.gate.url, headers=auth(browser_layer.gate)) as gate:
        for method, path, body in FORBIDDEN:
            answer = gate.request(method, path.format(**foreign), json=body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert "refused by the gate" in answer.json()["detail"]
    assert asyncio.run(_server_snapshot(api_url)) == before


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
