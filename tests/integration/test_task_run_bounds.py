"""The bounds of an agent task run, on the real dispatcher, server and store: refusals before
any process starts (budget, template, perimeter, bad request), the timeout and cancel killing
the CLI's processes, and the unblock detector for a run nobody will finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.settings import PREFECT_API_URL, temporary_settings

from automates.platform import components
from automates.settings import Settings
from tests.conftest import REPO
from tests.fixtures.processes import alive
from tests.fixtures.receivers import environment
from tests.fixtures.servers import raised_alerts
from tests.fixtures.task_runs import (
    ENDED,
    cli,
    fake_cli,
    flow_run_state,
    refused_start,
    show,
    spent_today,
    start,
    task_run_row,
    task_run_rows,
    wait_for,
)


def task_run_alerts(settings: Settings, kind: str, codename: str) -> list[dict[str, Any]]:
    """The alerts of one kind about task runs of `codename` (task runs have no automate)."""
    return [
        a
        for a in raised_alerts(settings)
        if a["kind"] == kind and a["facts"].get("codename") == codename
    ]


def test_refusals_happen_before_any_process_starts(layer: Settings, tmp_path: Path) -> None:
    argv_file = tmp_path / "argv.json"
    fake_cli(layer, tmp_path, "success", FAKE_CLAUDE_ARGV=str(argv_file))
    # Over budget: the agent spent $19.50 of its $20 today; this run's $2 budget cannot fit.
    spent_today(layer, "scout", Decimal("19.5"))
    seen = len(task_run_alerts(layer, "task_run_over_budget", "weekly-audit"))
    row = start(layer)
    assert row["status"] == "over_budget", row
    assert row["started_at"] is None and row["pid"] is None and not argv_file.exists()
    assert "refused before start" in row["error"] and "$20.00" in row["error"]
    assert flow_run_state(layer, row["flow_run_id"]) == ("OverBudget", row["error"])
    [refused_alert] = task_run_alerts(layer, "task_run_over_budget", "weekly-audit")[seen:]
    assert refused_alert["facts"]["agent"] == "scout" and refused_alert["automate"] is None
    assert refused_alert["body"].endswith(row["error"])
    # Another agent's budget is its own.
    assert start(layer, agent="oracle")["status"] == "completed"
    # An unknown template and an unknown perimeter: failed with the name, nothing started.
    row = start(layer, template="godmode", agent="oracle")
    assert row["status"] == "failed" and "unknown permission template 'godmode'" in row["error"]
    refused = refused_start(layer, codename="x", agent="oracle", perimeter="nowhere")
    assert refused.returncode == 2 and "unknown perimeter 'nowhere'" in refused.stdout
    bad = refused_start(layer, codename="Bad Name", agent="oracle")
    assert bad.returncode == 2 and "'codename'" in bad.stdout
    assert len(task_run_rows(layer)) == 4  # the two refused requests created nothing
    # Only the refusal for budget is an alert.
    assert len(task_run_alerts(layer, "task_run_over_budget", "weekly-audit")) == seen + 1


def test_a_runaway_cli_stopped_at_its_budget_is_an_alert(layer: Settings, tmp_path: Path) -> None:
    fake_cli(layer, tmp_path, "runaway")
    seen = len(task_run_alerts(layer, "task_run_killed", "runaway-cost"))
    row = start(layer, codename="runaway-cost", budget="0.5")
    assert row["status"] == "over_budget", row
    [killed] = task_run_alerts(layer, "task_run_killed", "runaway-cost")[seen:]
    assert killed["title"] == "task run runaway-cost of agent scout killed"
    assert "over the $0.5 budget" in killed["body"]


def test_timeout_kills_the_cli_and_cancel_stops_it(layer: Settings, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    fake_cli(layer, tmp_path, "hang", FAKE_CLAUDE_PIDS=str(pids))
    row = start(layer, timeout="3")
    assert row["status"] == "timed_out", row
    assert flow_run_state(layer, row["flow_run_id"])[0] == "TimedOut"
    for pid in map(int, pids.read_text().split()):
        assert not alive(pid), f"process {pid} of the timed-out CLI survived"

    pids.unlink()
    row = start(layer, wait=False, timeout="600")
    wait_for(layer, row["id"], lambda r: r["status"] == "running" and r["pid"])
    assert cli(layer, "task-run", "cancel", row["id"])["cancelled"] is True
    row = wait_for(layer, row["id"], lambda r: r["status"] in ENDED)
    assert row["status"] == "cancelled", row
    for pid in map(int, pids.read_text().split()):
        assert not alive(pid), f"process {pid} of the cancelled CLI survived"


def test_the_unblock_detector_retries_a_really_stuck_run_and_obeys_its_kill_switch(
    layer: Settings, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    fake_cli(layer, tmp_path, "hang", FAKE_CLAUDE_PIDS=str(pids))
    row = start(layer, wait=False, timeout="8")
    task_run_id = UUID(row["id"])
    while not ((found := task_run_row(layer, task_run_id))["status"] == "running" and found["pid"]):
        time.sleep(0.05)
    # The dispatcher dies hard, and the CLI with it: nobody will ever finish this task run.
    dispatcher = components.worker(layer, layer.agent.pool)
    os.kill(dispatcher.pid() or 0, signal.SIGKILL)
    os.killpg(found["pid"], signal.SIGKILL)
    time.sleep(10)  # past its 8 s timeout and the 1 s threshold since its last sign of life
    row = show(layer, row["id"])
    assert row["status"] == "running"

    _set_kill_switch(layer, "true")
    state, message = _run_detector(layer)
    assert state == "Skipped" and "kill switch" in message
    assert show(layer, row["id"])["attempts"] == 1

    _set_kill_switch(layer, "false")
    state, message = _run_detector(layer)
    assert message == "1 stuck task run(s) retried, 0 given up", message
    assert flow_run_state(layer, row["flow_run_id"])[0] == "Crashed"
    retried = show(layer, row["id"])
    assert retried["status"] == "pending" and retried["flow_run_id"] != row["flow_run_id"]
    dispatcher.stop()
    components.start_agent_dispatcher(layer)
    final = wait_for(layer, row["id"], lambda r: r["status"] in ENDED)
    assert final["attempts"] == 2 and final["status"] == "timed_out"


def _set_kill_switch(settings: Settings, value: str) -> None:
    prefect = str(Path(sys.executable).with_name("prefect"))
    subprocess.run(
        [prefect, "variable", "set", "automates_unblock_kill_switch", value, "--overwrite"],
        env={**os.environ, "PREFECT_API_URL": settings.api_url},
        check=True,
        capture_output=True,
    )


def _run_detector(settings: Settings) -> tuple[str, str]:
    """One run of the unblock detector, in this process, against the layer's server and store."""
    from prefect.flows import load_flow_from_entrypoint

    detector: Any = load_flow_from_entrypoint(f"{REPO}/flows/unblock_detector.py:unblock_detector")
    env = {"AUTOMATES_DATABASE_URL": settings.database_url or ""}
    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}), environment(env):
        state = detector(stuck_seconds=1, return_state=True)
    return state.name or "", state.message or ""
