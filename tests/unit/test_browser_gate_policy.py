"""The gate's allowlist: a residential worker's calls, its own pool only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from automates.gate.policy import (
    allowed,
    log_run_ids,
    refused_update_fields,
    scoped_to_pool,
    why_not_held,
)

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


def test_a_flow_run_update_may_not_touch_job_variables_parameters_or_tags() -> None:
    assert refused_update_fields({"name": "x", "infrastructure_pid": "1:2"}) == []
    assert refused_update_fields({"empirical_policy": {}, "flow_version": "1"}) == []
    assert refused_update_fields({"job_variables": {"command": "id"}}) == ["job_variables"]
    assert refused_update_fields({"name": "x", "parameters": {}, "tags": []}) == [
        "parameters",
        "tags",
    ]
    assert refused_update_fields(["junk"])  # not an object: refused whole


def test_every_log_line_must_name_its_run_and_a_batch_names_few() -> None:
    line = {"name": "n", "level": 20, "message": "m", "timestamp": "2026-01-01T00:00:00Z"}
    assert log_run_ids([{**line, "flow_run_id": RUN}]) == ({RUN}, set())
    assert log_run_ids([{**line, "flow_run_id": RUN, "task_run_id": RUN}]) == ({RUN}, {RUN})
    assert "flow_run_id" in str(log_run_ids([line]))  # a worker line without a run
    assert "flow_run_id" in str(log_run_ids([{**line, "flow_run_id": "../variables"}]))
    assert "JSON list" in str(log_run_ids({"flow_run_id": RUN}))
    many = [{**line, "flow_run_id": str(uuid.UUID(int=n))} for n in range(40)]
    assert "at most" in str(log_run_ids(many))


NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _run(pool: str, state_type: str, ended_seconds_ago: float = 0) -> dict[str, object]:
    stamp = (NOW - timedelta(seconds=ended_seconds_ago)).isoformat()
    return {"work_pool_name": pool, "state": {"type": state_type, "timestamp": stamp}}


@pytest.mark.parametrize(
    ("run", "why"),
    [
        (_run("residential", "PENDING"), None),
        (_run("residential", "RUNNING"), None),
        (_run("residential", "CANCELLING"), None),
        (_run("residential", "COMPLETED", 5), None),  # its last batch, sent after the end
        (_run("residential", "COMPLETED", 3600), "no worker holds the run"),
        (_run("residential", "SCHEDULED"), "no worker holds the run"),
        (_run("local", "RUNNING"), "not in pool 'residential'"),
        (None, "no such flow run"),
    ],
)
def test_logs_are_written_only_for_runs_the_pool_holds(
    run: dict[str, object] | None, why: str | None
) -> None:
    verdict = why_not_held(run, "residential", NOW)
    assert verdict == why if why is None else why in (verdict or "")
