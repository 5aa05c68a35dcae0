"""Agent task runs end to end: requested as an operator does, run by the real agent dispatcher
against the real Prefect server and store, the LLM CLI being the fake CLI executable."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import text

from automates.agents.llm_cli import LlmCli
from automates.platform import components
from automates.server.client import prefect_client
from automates.settings import Settings
from automates.store.engine import make_engine, transaction
from automates.sync import sync
from tests.conftest import REPO
from tests.fixtures.servers import cli_env, layer_settings

FAKE_CLAUDE = REPO / "tests" / "fixtures" / "fake_claude" / "claude"
ENDED = {"completed", "failed", "timed_out", "over_budget", "cancelled"}


@pytest.fixture
def layer(server: Settings, tmp_path: Path) -> Iterator[Settings]:
    """The shipped registry synced, a tenant perimeter, and an agent dispatcher running."""
    yield from _layer(layer_settings(server, project_root=REPO), tmp_path)


@pytest.fixture
def process_layer(server: Settings, worker: str, tmp_path: Path) -> Iterator[Settings]:
    """The same, plus a process worker serving the other automates (scoped-run)."""
    yield from _layer(layer_settings(server, project_root=REPO, work_pool=worker), tmp_path)


def _layer(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    asyncio.run(sync(settings, settings.database_url or ""))
    engine = make_engine(settings.database_url or "")
    with transaction(engine) as connection:
        for table in ("task_run_output", "task_runs", "runs"):
            connection.execute(text(f"DELETE FROM automates.{table}"))
        connection.execute(text("DELETE FROM automates.perimeters WHERE id <> 'platform'"))
    engine.dispose()
    acme = tmp_path / "acme"
    acme.mkdir()
    _cli(settings, "perimeter", "set", "acme", "--title", "ACME", "--workdir", str(acme),
         "--client", "ACME Corp", "--mailbox", "ops@acme.test")  # fmt: skip
    components.start_agent_dispatcher(settings)
    try:
        yield settings
    finally:
        components.worker(settings, settings.agent_pool).stop()


def fake_cli(settings: Settings, folder: Path, mode: str, **env: str) -> None:
    """Save the LLM CLI block pointing at a wrapper that runs the fake CLI in `mode`."""
    wrapper = folder / f"claude-{mode}"
    exports = "".join(f"export {k}='{v}'\n" for k, v in {"FAKE_CLAUDE_MODE": mode, **env}.items())
    wrapper.write_text(f'#!/bin/sh\n{exports}exec {sys.executable} {FAKE_CLAUDE} "$@"\n')
    wrapper.chmod(0o755)

    async def save() -> None:
        with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
            await LlmCli(executable=str(wrapper)).asave(settings.llm_cli_block, overwrite=True)

    asyncio.run(save())


def _cli(settings: Settings, *args: str, ok: bool = True) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "automates.cli", *args, "--json"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if not ok:
        return done  # the caller checks the exit code and the message
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def start(settings: Settings, *extra: str, wait: bool = True, **fields: str) -> dict[str, Any]:
    request = {
        "codename": "weekly-audit",
        "agent": "scout",
        "template": "research",
        "prompt": "Summarise the open issues.",
        "perimeter": "acme",
        **fields,
    }
    args = [arg for key, value in request.items() for arg in (f"--{key.replace('_', '-')}", value)]
    return _cli(settings, "task-run", "start", *args, *extra, *(["--wait"] if wait else []))


def show(settings: Settings, task_run_id: str) -> dict[str, Any]:
    return _cli(settings, "task-run", "show", task_run_id)


def wait_for(
    settings: Settings, task_run_id: str, predicate: Any, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        row = show(settings, task_run_id)
        if predicate(row):
            return row
        assert time.monotonic() < deadline, f"gave up waiting: {row}"
        time.sleep(0.3)


def output(settings: Settings, task_run_id: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "automates.cli", "task-run", "tail", task_run_id],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def flow_run_state(settings: Settings, flow_run_id: str) -> tuple[str, str]:
    async def read() -> tuple[str, str]:
        async with prefect_client(settings.api_url) as client:
            state = (await client.read_flow_run(UUID(flow_run_id))).state
            assert state is not None
            return state.name or "", state.message or ""

    return asyncio.run(read())


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


def wait_for_lines(settings: Settings, task_run_id: str) -> list[str]:
    deadline = time.monotonic() + 30
    while not (lines := output(settings, task_run_id)):
        assert time.monotonic() < deadline, "no output line reached the store"
        time.sleep(0.2)
    return lines


def test_prefect_deployment_run_runs_a_task_run_and_a_dry_run_records_its_command(
    layer: Settings, tmp_path: Path
) -> None:
    fake_cli(layer, tmp_path, "success")
    prefect = str(Path(sys.executable).with_name("prefect"))
    ran = subprocess.run(
        [
            prefect,
            "deployment",
            "run",
            "agent-task-run/agent-task-run",
            "--watch",
            "--param",
            "codename=dry",
            "--param",
            "agent=scout",
            "--param",
            "template=code",
            "--param",
            "prompt=Fix the failing test.",
            "--param",
            "perimeter=acme",
            "--param",
            "dry_run=true",
        ],
        env={**os.environ, "PREFECT_API_URL": layer.api_url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    [task_run] = _task_runs(layer)
    assert task_run["status"] == "completed" and task_run["pid"] is None
    assert task_run["started_at"] is None and task_run["exit_code"] is None  # nothing started
    command = task_run["command"]
    assert command[0].endswith("claude-success") and command[-1] == "Fix the failing test."
    assert any(rule.startswith("Edit(//") and rule.endswith("/acme/**)") for rule in command)
    assert not output(layer, str(task_run["id"]))


def _task_run(settings: Settings, task_run_id: UUID) -> dict[str, Any]:
    """The task run's row read directly (fast enough to catch it between two states)."""
    engine = make_engine(settings.database_url or "")
    with transaction(engine) as connection:
        row = connection.execute(
            text("SELECT * FROM automates.task_runs WHERE id = :id"), {"id": task_run_id}
        ).one()
    engine.dispose()
    return dict(row._mapping)


def _task_runs(settings: Settings) -> list[dict[str, Any]]:
    engine = make_engine(settings.database_url or "")
    with transaction(engine) as connection:
        rows = [
            dict(r._mapping) for r in connection.execute(text("SELECT * FROM automates.task_runs"))
        ]
    engine.dispose()
    return rows


def test_refusals_happen_before_any_process_starts(layer: Settings, tmp_path: Path) -> None:
    argv_file = tmp_path / "argv.json"
    fake_cli(layer, tmp_path, "success", FAKE_CLAUDE_ARGV=str(argv_file))
    # Over budget: the agent spent $19.50 of its $20 today; this run's $2 budget cannot fit.
    engine = make_engine(layer.database_url or "")
    with transaction(engine) as connection:
        connection.execute(
            text(
                "INSERT INTO automates.task_runs (id, codename, agent, prompt, template, perimeter,"
                " timeout_seconds, status, attempts, cost_usd, ended_at) VALUES (gen_random_uuid(),"
                " 'earlier', 'scout', 'x', 'research', 'acme', 60, 'completed', 1, 19.5, now())"
            )
        )
    engine.dispose()
    row = start(layer)
    assert row["status"] == "over_budget", row
    assert row["started_at"] is None and row["pid"] is None and not argv_file.exists()
    assert "refused before start" in row["error"] and "$20.00" in row["error"]
    assert flow_run_state(layer, row["flow_run_id"]) == ("OverBudget", row["error"])
    # Another agent's budget is its own.
    assert start(layer, agent="oracle")["status"] == "completed"
    # An unknown template and an unknown perimeter: failed with the name, nothing started.
    row = start(layer, template="godmode", agent="oracle")
    assert row["status"] == "failed" and "unknown permission template 'godmode'" in row["error"]
    refused = _cli(
        layer,
        "task-run",
        "start",
        "--codename",
        "x",
        "--agent",
        "oracle",
        "--prompt",
        "p",
        "--template",
        "research",
        "--perimeter",
        "nowhere",
        ok=False,
    )
    assert refused.returncode == 2 and "unknown perimeter 'nowhere'" in refused.stdout
    bad = _cli(
        layer,
        "task-run",
        "start",
        "--codename",
        "Bad Name",
        "--agent",
        "oracle",
        "--prompt",
        "p",
        "--template",
        "research",
        ok=False,
    )
    assert bad.returncode == 2 and "'codename'" in bad.stdout
    assert len(_task_runs(layer)) == 4  # the two refused requests created nothing


def test_timeout_kills_the_cli_and_cancel_stops_it(layer: Settings, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    fake_cli(layer, tmp_path, "hang", FAKE_CLAUDE_PIDS=str(pids))
    row = start(layer, timeout="3")
    assert row["status"] == "timed_out", row
    assert flow_run_state(layer, row["flow_run_id"])[0] == "TimedOut"
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), f"process {pid} of the timed-out CLI survived"

    pids.unlink()
    row = start(layer, wait=False, timeout="600")
    wait_for(layer, row["id"], lambda r: r["status"] == "running" and r["pid"])
    assert _cli(layer, "task-run", "cancel", row["id"])["cancelled"] is True
    row = wait_for(layer, row["id"], lambda r: r["status"] in ENDED)
    assert row["status"] == "cancelled", row
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), f"process {pid} of the cancelled CLI survived"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_the_unblock_detector_retries_a_really_stuck_run_and_obeys_its_kill_switch(
    layer: Settings, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    fake_cli(layer, tmp_path, "hang", FAKE_CLAUDE_PIDS=str(pids))
    row = start(layer, wait=False, timeout="8")
    task_run_id = UUID(row["id"])
    while not ((found := _task_run(layer, task_run_id))["status"] == "running" and found["pid"]):
        time.sleep(0.05)
    # The dispatcher dies hard, and the CLI with it: nobody will ever finish this task run.
    dispatcher = components.worker(layer, layer.agent_pool)
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
    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}), _environ(env):
        state = detector(stuck_seconds=1, return_state=True)
    return state.name or "", state.message or ""


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_a_scoped_run_loads_its_perimeter_and_waits_for_its_task_runs(
    process_layer: Settings, tmp_path: Path
) -> None:
    layer = process_layer
    fake_cli(layer, tmp_path, "success")
    prefect = str(Path(sys.executable).with_name("prefect"))
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
    ran = subprocess.run(
        [
            prefect,
            "deployment",
            "run",
            "scoped-run/scoped-run",
            "--watch",
            "--param",
            "perimeter=acme",
            "--param",
            "title=Monday triage",
            "--param",
            "trigger=email",
            "--param",
            "source=atlas-inbox",
            "--param",
            f"tasks={tasks}",
        ],
        env={**os.environ, "PREFECT_API_URL": layer.api_url},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    [run] = _cli(layer, "runs")
    assert (run["perimeter"], run["trigger"], run["source"], run["status"]) == (
        "acme",
        "email",
        "atlas-inbox",
        "completed",
    )
    assert run["task_runs"] == 1 and run["ended_at"] is not None
    [task_run] = _task_runs(layer)
    assert task_run["run_id"] == UUID(run["id"]) and task_run["status"] == "completed"
    assert (
        "Client: ACME Corp" in task_run["prompt"] and "Mailbox: ops@acme.test" in task_run["prompt"]
    )

    missing = subprocess.run(
        [
            prefect,
            "deployment",
            "run",
            "scoped-run/scoped-run",
            "--watch",
            "--param",
            "perimeter=nowhere",
            "--param",
            "title=lost",
        ],
        env={**os.environ, "PREFECT_API_URL": layer.api_url},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    [missing_run] = re.findall(r"UUID: ([0-9a-f-]{36})", missing.stdout)
    state, message = flow_run_state(layer, missing_run)
    assert state == "Failed" and "unknown perimeter 'nowhere'" in message
    assert len(_cli(layer, "runs")) == 1


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
                layer.llm_cli_block, overwrite=True
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
