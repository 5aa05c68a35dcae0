"""When the watch ends a browser job no worker will report on, and when it leaves it alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from automates.browser.watch import RunSeen, reason_to_end
from automates.cli.app import app

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=300)
RUNNING = RunSeen(state_name="Running", final=False)


def job(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "status": status,
        "host": "home-1" if status == "running" else None,
        "flow_run_id": uuid.uuid4(),
        "timeout_seconds": 120,
        "created_at": NOW - timedelta(minutes=30),
        "started_at": NOW - timedelta(minutes=1) if status == "running" else None,
        **fields,
    }


@pytest.mark.parametrize("state", ["Crashed", "Cancelled", "Failed", "Completed"])
def test_a_running_job_whose_flow_run_ended_is_lost(state: str) -> None:
    reason = reason_to_end(job("running"), RunSeen(state_name=state, final=True), NOW, GRACE)
    assert reason == (
        f"claimed by home-1, never reported; its flow run ended {state} without the job's report"
    )


def test_a_running_job_is_lost_only_past_its_timeout_and_the_grace() -> None:
    # 120 s timeout + 300 s grace: 420 s after its start is still inside, a second more is not.
    inside = job("running", started_at=NOW - timedelta(seconds=420))
    assert reason_to_end(inside, RUNNING, NOW, GRACE) is None
    past = job("running", started_at=NOW - timedelta(seconds=421))
    assert reason_to_end(past, RUNNING, NOW, GRACE) == (
        "claimed by home-1, never reported; running 421 s, past its 120 s timeout and 300 s of "
        "grace"
    )
    assert reason_to_end(job("running"), None, NOW, GRACE) == (
        "claimed by home-1, never reported; its flow run no longer exists"
    )


def test_a_queued_job_fails_when_its_flow_run_is_gone_before_any_claim() -> None:
    queued = job("queued")
    assert reason_to_end(queued, RunSeen(state_name="Scheduled", final=False), NOW, GRACE) is None
    assert reason_to_end(queued, RunSeen(state_name="Late", final=False), NOW, GRACE) is None
    assert reason_to_end(queued, RunSeen(state_name="Cancelled", final=True), NOW, GRACE) == (
        "its flow run ended Cancelled before any worker claimed it; nothing ran"
    )
    assert reason_to_end(queued, None, NOW, GRACE) == (
        "its flow run no longer exists and no worker claimed it; nothing ran"
    )


def test_a_queued_job_without_a_flow_run_waits_out_the_grace() -> None:
    # Enqueue writes the row, then attaches the flow run: a moment without one is normal.
    young = job("queued", flow_run_id=None, created_at=NOW - timedelta(seconds=10))
    assert reason_to_end(young, None, NOW, GRACE) is None
    orphan = job("queued", flow_run_id=None)
    assert reason_to_end(orphan, None, NOW, GRACE) == (
        "no flow run was ever created for it (its enqueue died); nothing ran"
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [(["--status", "gone"], "'status'"), (["--limit", "0"], "'limit'")],
)
def test_browser_list_refuses_bad_options_by_name(args: list[str], field: str) -> None:
    done = CliRunner().invoke(app, ["browser", "list", *args, "--json"])
    assert done.exit_code == 2, (done.stdout, done.stderr)
    assert f"field {field}" in done.stdout
