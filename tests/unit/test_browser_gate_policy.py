"""The gate's allowlist: a residential worker's calls, its own pool only."""

from __future__ import annotations

import pytest

from automates.gate.policy import allowed, scoped_to_pool

RUN = "44d2bec8-036d-49e3-b60f-4658b12d28b3"  # fixed: test ids must not change between runs


@pytest.mark.parametrize(
    ("method", "path", "owned"),
    [
        ("GET", "/api/work_pools/residential", None),
        ("POST", "/api/work_pools/residential/get_scheduled_flow_runs", None),
        ("POST", "/api/work_pools/residential/workers/heartbeat", None),
        ("GET", f"/api/flow_runs/{RUN}", "flow_run"),
        ("POST", f"/api/flow_runs/{RUN}/set_state", "flow_run"),
        ("GET", f"/api/deployments/{RUN}", "deployment"),
        ("POST", "/api/logs/", None),
    ],
)
def test_the_worker_calls_are_allowed(method: str, path: str, owned: str | None) -> None:
    verdict = allowed(method, path, "residential")
    assert verdict is not None
    rule, object_id = verdict
    assert rule.owned == owned
    assert object_id == (RUN if owned else None)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/deployments/"),
        ("PATCH", f"/api/deployments/{RUN}"),
        ("POST", "/api/block_documents/"),
        ("GET", "/api/block_documents/x"),
        ("POST", "/api/variables/"),
        ("GET", "/api/work_pools/local"),
        ("GET", "/api/work_pools/residential2"),
        ("POST", "/api/work_pools/residentia./get_scheduled_flow_runs"),
        ("POST", "/api/work_pools/"),
        ("DELETE", f"/api/flow_runs/{RUN}"),
        ("GET", f"/api/flow_runs/{RUN}/../../variables"),
        ("POST", "/api/logs/../variables/"),
    ],
)
def test_everything_else_is_refused(method: str, path: str) -> None:
    assert allowed(method, path, "residential") is None


def test_a_flow_run_filter_is_narrowed_to_the_pool_whatever_it_asked() -> None:
    asked = {"work_pools": {"name": {"any_": ["local"]}}, "limit": 5}
    narrowed = scoped_to_pool(asked, "residential")
    assert narrowed["work_pools"] == {"operator": "and_", "name": {"any_": ["residential"]}}
    assert narrowed["limit"] == 5
    assert scoped_to_pool(["junk"], "residential")["work_pools"]
