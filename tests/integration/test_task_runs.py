"""Agent task runs end to end: requested as an operator does, run by the real agent dispatcher
against the real Prefect server and store, the LLM CLI being the fake CLI executable (or the
real one, not logged in)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from uuid import UUID

from prefect.settings import PREFECT_API_URL, temporary_settings

from automates.agents.llm_cli import LlmCli
from automates.settings import Settings
from tests.fixtures.commands import deployment_run
from tests.fixtures.task_runs import (
    ENDED,
    cli,
    fake_cli,
    flow_run_state,
    output,
    show,
    start,
    task_run_rows,
    wait_for,
    wait_for_lines,
)


def test_a_task_run_streams_its_output_and_stores_its_outcome(
    layer: Settings, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    fake_cli(layer, tmp_path, "gated", FAKE_CLAUDE_GATE=str(gate))
    row = start(layer, wait=False)
    task_run_id = row["id"]
    # Live: the init line is in the store while the CLI still waits at its gate.
    row = wait_for(layer, task_run_id, lambda r: r["status"] == "running" and r["pid"])
    lines = wait_for_lines(layer, task_run_id)
    assert '"subtype":"init"' in lines[0].replace(" ", "")
    assert show(layer, task_run_id)["ended_at"] is None
    os.kill(row["pid"], 0)  # the CLI process is alive while its first line is already stored
    gate.touch()
    row = wait_for(layer, task_run_id, lambda r: r["status"] in ENDED)
    assert row["status"] == "completed", row
    assert row["exit_code"] == 0 and row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert row["cost_usd"] > 0 and row["attempts"] == 1
    assert row["command"][1:5] == ["-p", "--output-format", "stream-json", "--verbose"]
    assert "Perimeter" not in row["prompt"]  # a task run started alone carries its own prompt
    assert any('"type":"result"' in line.replace(" ", "") for line in output(layer, task_run_id))
    assert flow_run_state(layer, row["flow_run_id"])[0] == "Completed"


def test_prefect_deployment_run_runs_a_task_run_and_a_dry_run_records_its_command(
    layer: Settings, tmp_path: Path
) -> None:
    fake_cli(layer, tmp_path, "success")
    ran = deployment_run(
        layer,
        "agent-task-run/agent-task-run",
        codename="dry",
        agent="scout",
        template="code",
        prompt="Fix the failing test.",
        perimeter="acme",
        dry_run="true",
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    [task_run] = task_run_rows(layer)
    assert task_run["status"] == "completed" and task_run["pid"] is None
    assert task_run["started_at"] is None and task_run["exit_code"] is None  # nothing started
    command = task_run["command"]
    assert command[0].endswith("claude-success") and command[-1] == "Fix the failing test."
    assert any(rule.startswith("Edit(//") and rule.endswith("/acme/**)") for rule in command)
    assert not output(layer, str(task_run["id"]))


def test_a_scoped_run_loads_its_perimeter_and_waits_for_its_task_runs(
    process_layer: Settings, tmp_path: Path
) -> None:
    layer = process_layer
    fake_cli(layer, tmp_path, "success")
    tasks = json.dumps(
        [
            {
                "codename": "inbox-triage",
                "agent": "atlas",
                "prompt": "Triage.",
                "template": "research",
            }
        ]
    )
    ran = deployment_run(
        layer,
        "scoped-run/scoped-run",
        perimeter="acme",
        title="Monday triage",
        trigger="email",
        source="atlas-inbox",
        tasks=tasks,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    [run] = cli(layer, "runs")
    assert (run["perimeter"], run["trigger"], run["source"], run["status"]) == (
        "acme",
        "email",
        "atlas-inbox",
        "completed",
    )
    assert run["task_runs"] == 1 and run["ended_at"] is not None
    [task_run] = task_run_rows(layer)
    assert task_run["run_id"] == UUID(run["id"]) and task_run["status"] == "completed"
    assert (
        "Client: ACME Corp" in task_run["prompt"] and "Mailbox: ops@acme.test" in task_run["prompt"]
    )

    missing = deployment_run(layer, "scoped-run/scoped-run", perimeter="nowhere", title="lost")
    [missing_run] = re.findall(r"UUID: ([0-9a-f-]{36})", missing.stdout)
    state, message = flow_run_state(layer, missing_run)
    assert state == "Failed" and "unknown perimeter 'nowhere'" in message
    assert len(cli(layer, "runs")) == 1


def test_the_layer_tools_are_mounted_for_the_requests_agent_with_no_secret_in_sight(
    layer: Settings, tmp_path: Path
) -> None:
    from sqlalchemy.engine import make_url

    record = tmp_path / "argv.json"
    fake_cli(layer, tmp_path, "success", FAKE_CLAUDE_ARGV=str(record))
    row = start(layer, template="routines", agent="atlas")
    assert row["status"] == "completed", row
    command = row["command"]
    config = command[command.index("--mcp-config") + 1]
    # The CLI read the layer server's entry from a file only this user could read ...
    [read] = json.loads(record.read_text())["mcp_configs"]
    assert (read["path"], read["mode"], read["folder_mode"]) == (config, "0o600", "0o700")
    server = read["config"]["mcpServers"]["automates"]
    assert server["command"] == sys.executable
    assert server["args"] == ["-m", "automates.mcp", "--agent", "atlas"]  # the request's agent
    env = server["env"]
    # ... with the store the task run used and the layer's settings ...
    store = make_url(env["AUTOMATES_DATABASE_URL"])
    assert store.database == make_url(layer.database_url or "").database
    assert env["AUTOMATES_PREFECT_API_URL"] == layer.api_url
    assert env["AUTOMATES_REGISTRY_FILE"] == str(layer.registry_path)
    # ... and the file is gone; the store's URL is in no stored argv, line or message.
    assert not Path(config).exists()
    stored = json.dumps([task_run_rows(layer), output(layer, row["id"])], default=str)
    assert "AUTOMATES_DATABASE_URL" not in stored and env["AUTOMATES_DATABASE_URL"] not in stored
    assert "mcp__automates" in command[command.index("--allowedTools") + 1 :]


def test_an_mcp_server_not_connected_fails_the_task_run_before_any_turn(
    layer: Settings, tmp_path: Path
) -> None:
    fake_cli(layer, tmp_path, "success", FAKE_CLAUDE_MCP_FAILED="automates")
    row = start(layer, template="routines")
    stopped = "MCP server 'automates' is failed, not connected; stopped before any model turn"
    assert row["status"] == "failed", row
    assert row["error"].startswith(f"failed: {stopped} ("), row["error"]
    assert row["input_tokens"] == 0 and row["cost_usd"] == 0
    assert ['"subtype":"init"' in line.replace(" ", "") for line in output(layer, row["id"])] == [
        True
    ]
    assert flow_run_state(layer, row["flow_run_id"]) == ("Failed", row["error"])


def test_the_real_cli_not_logged_in_ends_as_a_clean_failed_task_run(
    layer: Settings, tmp_path: Path
) -> None:
    from tests.fixtures.claude_cli import install

    claude = install()
    home = tmp_path / "home"
    home.mkdir()
    wrapper = tmp_path / "claude-real"
    wrapper.write_text(f"#!/bin/sh\nexport HOME='{home}'\nexec {claude} \"$@\"\n")
    wrapper.chmod(0o755)

    async def save() -> None:
        with temporary_settings(updates={PREFECT_API_URL: layer.api_url}):
            await LlmCli(executable=str(wrapper), env_passthrough=[]).asave(
                layer.llm.cli_block, overwrite=True
            )

    asyncio.run(save())
    row = start(layer, template="audit", timeout="120")
    assert row["status"] == "failed", row
    assert row["exit_code"] == 1 and row["terminal_reason"] == "api_error"
    assert row["input_tokens"] == 0 and row["output_tokens"] == 0 and row["cost_usd"] == 0
    lines = output(layer, row["id"])
    assert '"permissionMode":"dontAsk"' in lines[0].replace(" ", "")
    assert any('"type":"result"' in line.replace(" ", "") for line in lines)
    assert flow_run_state(layer, row["flow_run_id"])[0] == "Failed"
