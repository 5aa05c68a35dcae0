"""run_cli against the fake CLI as a real subprocess: outcomes, live lines, bounds, kills,
MCP servers that must be connected."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from automates.agents.layer_tools import PrivateFolder
from automates.agents.llm_cli import LlmCli
from automates.agents.process import CliOutcome, run_cli
from automates.agents.templates import BUILTIN_TEMPLATES, PermissionTemplate, Scope
from tests.conftest import REPO
from tests.fixtures.agent_scope import SECRET_URL
from tests.fixtures.processes import alive

FAKE_CLAUDE = REPO / "tests" / "fixtures" / "fake_claude" / "claude"
STOPPED = "MCP server 'automates' is failed, not connected; stopped before any model turn"


def argv_for(
    scope: Scope,
    template: str | PermissionTemplate = "research",
    private: PrivateFolder | None = None,
) -> list[str]:
    cli = LlmCli(executable=str(FAKE_CLAUDE))
    return cli.command(
        prompt="Summarise the README",
        template=BUILTIN_TEMPLATES[template] if isinstance(template, str) else template,
        scope=scope,
        model="claude-sonnet-4-6",
        max_budget_usd=None,
        max_turns=None,
        agent="scout",
        layer_env={"AUTOMATES_DATABASE_URL": SECRET_URL},
        private=private,
    )


def run(
    argv: list[str],
    scope: Scope,
    *,
    timeout: float = 60,
    budget: float | None = None,
    lines: list[str] | None = None,
    started: list[int] | None = None,
    on_line: Callable[[str], None] | None = None,
    on_init: Callable[[], None] | None = None,
    **env: str,
) -> CliOutcome:
    """run_cli in the scope's tree with PATH, a HOME of the test's and `env`; each line goes to
    `on_line`, else into `lines`."""
    base = {"PATH": os.environ["PATH"], "HOME": str(scope.workdir.parent), **env}
    if on_line is None:
        on_line = (lines if lines is not None else []).append
    return run_cli(
        argv,
        cwd=scope.workdir,
        env=base,
        timeout_seconds=timeout,
        max_budget_usd=budget,
        on_start=started.append if started is not None else None,
        on_line=on_line,
        on_init=on_init,
    )


@pytest.mark.parametrize("template", sorted(BUILTIN_TEMPLATES))
def test_a_successful_run_is_completed_with_its_tokens_and_cost(
    scope: Scope, template: str, private: PrivateFolder
) -> None:
    lines: list[str] = []
    started: list[int] = []
    outcome = run(argv_for(scope, template, private), scope, lines=lines, started=started)
    assert outcome.status == "completed", outcome.error
    assert outcome.exit_code == 0
    assert outcome.pid == started[0]
    events = [json.loads(line) for line in lines]
    assert [event["type"] for event in events] == [
        "system",
        "assistant",
        "assistant",
        "user",
        "assistant",
        "result",
    ]
    result = events[-1]
    # The fake CLI accepted the template's flags and echoed them in its init event.
    assert events[0]["permissionMode"] == "dontAsk"
    assert events[0]["cwd"] == str(scope.workdir)
    assert outcome.input_tokens == result["usage"]["input_tokens"] == 4000
    assert outcome.output_tokens == result["usage"]["output_tokens"] == 220
    assert outcome.cost_usd == pytest.approx(result["total_cost_usd"])
    assert outcome.cost_usd == pytest.approx((4000 * 3 + 220 * 15) / 1_000_000)
    assert outcome.result_text == "The README says hi."
    assert outcome.terminal_reason == "completed"
    assert outcome.session_id == result["session_id"]


def test_the_layer_tools_config_is_read_from_a_private_file_removed_at_init(
    scope: Scope, private: PrivateFolder
) -> None:
    record = scope.workdir.parent / "argv.json"
    lines: list[str] = []
    lines_at_init: list[int] = []

    def on_init() -> None:  # as a task run does: the CLI has read its configuration
        lines_at_init.append(len(lines))
        private.close()

    argv = argv_for(scope, "routines", private)
    outcome = run(argv, scope, lines=lines, on_init=on_init, FAKE_CLAUDE_ARGV=str(record))
    assert outcome.status == "completed", outcome.error
    assert outcome.mcp_servers == (("automates", "connected"),)
    recorded = json.loads(record.read_text())
    [read] = recorded["mcp_configs"]
    # What the CLI read: a file only this user can read, in a folder only this user enters,
    # mounting the layer's server for the request's agent with the store's URL in its env.
    assert (read["inline"], read["mode"], read["folder_mode"]) == (False, "0o600", "0o700")
    server = read["config"]["mcpServers"]["automates"]
    assert server["args"] == ["-m", "automates.mcp", "--agent", "scout"]
    assert server["env"] == {"AUTOMATES_DATABASE_URL": SECRET_URL}
    # The argv (stored, and visible in `ps`) names the file, never the secret.
    assert recorded["argv"] == argv[1:]
    assert argv[argv.index("--mcp-config") + 1] == read["path"]
    assert "s3cret-pw" not in json.dumps(argv)
    # on_init came with the init event, before even that line was handed over; the file was
    # gone after it.
    assert lines_at_init == [0] and len(lines) == 6
    assert not Path(read["path"]).exists() and not Path(read["path"]).parent.exists()


def test_an_mcp_server_not_connected_stops_the_run_at_its_init_event(
    scope: Scope, private: PrivateFolder
) -> None:
    pids_file = scope.workdir.parent / "pids"
    lines: list[str] = []
    # The fake CLI would hang after its init event, its grandchild with it (as an MCP server
    # the CLI started would): the run stops at the init event, not at its 60 s timeout.
    outcome = run(
        argv_for(scope, "routines", private),
        scope,
        timeout=60,
        lines=lines,
        FAKE_CLAUDE_MODE="hang",
        FAKE_CLAUDE_PIDS=str(pids_file),
        FAKE_CLAUDE_MCP_FAILED="automates",
    )
    assert outcome.status == "failed"
    assert outcome.error == STOPPED
    assert outcome.mcp_servers == (("automates", "failed"),)
    assert [json.loads(line)["subtype"] for line in lines] == ["init"]
    assert (outcome.cost_usd, outcome.input_tokens, outcome.output_tokens) == (0, 0, 0)
    assert not any(alive(int(pid)) for pid in pids_file.read_text().split())


def test_every_mcp_server_is_required_and_only_those_not_connected_are_named(
    scope: Scope,
) -> None:
    template = PermissionTemplate(
        tools=["Read"],
        allowed_tools=["Read"],
        mcp_servers={"docs": {"command": "docs-mcp"}, "tickets": {"command": "tickets-mcp"}},
    )
    lines: list[str] = []
    # In success mode the fake CLI goes on to its turns: no line after init is handed over.
    outcome = run(argv_for(scope, template), scope, lines=lines, FAKE_CLAUDE_MCP_FAILED="tickets")
    assert outcome.status == "failed"
    assert outcome.error == (
        "MCP server 'tickets' is failed, not connected; stopped before any model turn"
    )
    assert outcome.mcp_servers == (("docs", "connected"), ("tickets", "failed"))
    assert len(lines) == 1 and outcome.result_text is None


def test_an_error_result_is_failed_with_its_reason(scope: Scope) -> None:
    outcome = run(argv_for(scope), scope, FAKE_CLAUDE_MODE="error")
    assert outcome.status == "failed"
    assert outcome.exit_code == 1
    assert outcome.terminal_reason == "api_error"
    assert outcome.error == "API Error: 500 Internal server error"
    assert (outcome.cost_usd, outcome.input_tokens, outcome.output_tokens) == (0, 0, 0)


def test_no_result_event_is_failed_even_with_exit_zero(scope: Scope) -> None:
    lines: list[str] = []
    outcome = run(argv_for(scope), scope, lines=lines, FAKE_CLAUDE_MODE="garbage")
    assert outcome.exit_code == 0
    assert outcome.status == "failed"
    assert outcome.error is not None and "no result event" in outcome.error
    assert lines[-1] == "this is not json"  # every line is handed over, parsed or not


def test_a_refused_flag_is_failed_with_the_cli_message(scope: Scope) -> None:
    argv = [*argv_for(scope)[:-2], "--bogus-flag", "--", "x"]
    outcome = run(argv, scope)
    assert outcome.status == "failed"
    assert outcome.exit_code == 1
    assert outcome.error is not None and "unrecognized arguments: --bogus-flag" in outcome.error


def test_a_missing_executable_is_failed_not_raised(scope: Scope) -> None:
    outcome = run([str(scope.workdir / "no-such-cli"), "-p"], scope)
    assert outcome.status == "failed"
    assert outcome.pid is None
    assert outcome.error is not None and "cannot start" in outcome.error


def test_lines_arrive_while_the_process_still_runs(scope: Scope) -> None:
    # The fake CLI prints its init event, then waits for the gate file before going on. The
    # gate is created from on_line, so the run can only complete if lines are handed over
    # live; buffered until exit, it would wait for the gate forever and time out.
    gate = scope.workdir.parent / "gate"
    seen_before_gate: list[str] = []

    def on_line(line: str) -> None:
        if not gate.exists():
            seen_before_gate.append(line)
            gate.touch()

    outcome = run(
        argv_for(scope),
        scope,
        on_line=on_line,
        FAKE_CLAUDE_MODE="gated",
        FAKE_CLAUDE_GATE=str(gate),
    )
    assert outcome.status == "completed", outcome.error
    assert len(seen_before_gate) == 1
    assert json.loads(seen_before_gate[0])["subtype"] == "init"


def test_a_hanging_cli_is_killed_with_its_whole_process_group(scope: Scope) -> None:
    pids_file = scope.workdir.parent / "pids"
    lines: list[str] = []
    outcome = run(
        argv_for(scope),
        scope,
        timeout=2,
        lines=lines,
        FAKE_CLAUDE_MODE="hang",
        FAKE_CLAUDE_PIDS=str(pids_file),
    )
    assert outcome.status == "timed_out"
    assert outcome.error == "timed out after 2 s"
    assert json.loads(lines[0])["subtype"] == "init"
    cli_pid, grandchild_pid = map(int, pids_file.read_text().split())
    assert cli_pid == outcome.pid
    # The CLI and the process it started (a tool's shell, say) are both gone.
    assert not alive(cli_pid)
    assert not alive(grandchild_pid)


def test_a_cli_ignoring_sigterm_is_killed_anyway(scope: Scope) -> None:
    pids_file = scope.workdir.parent / "pids"
    outcome = run(
        argv_for(scope),
        scope,
        timeout=1,
        FAKE_CLAUDE_MODE="hang",
        FAKE_CLAUDE_PIDS=str(pids_file),
        FAKE_CLAUDE_IGNORE_TERM="1",
    )
    assert outcome.status == "timed_out"
    assert outcome.exit_code == -9  # it took SIGKILL
    assert not any(alive(int(pid)) for pid in pids_file.read_text().split())


def test_a_runaway_cli_is_stopped_at_its_budget(scope: Scope) -> None:
    lines: list[str] = []
    outcome = run(argv_for(scope), scope, budget=0.5, lines=lines, FAKE_CLAUDE_MODE="runaway")
    assert outcome.status == "over_budget"
    assert outcome.cost_usd > 0.5
    assert outcome.error is not None and "over the $0.5 budget" in outcome.error
    # It was stopped at the first message that crossed the budget, not later.
    messages = [json.loads(line)["message"] for line in lines[1:]]
    costs = [
        (m["usage"]["input_tokens"] * 3 + m["usage"]["output_tokens"] * 15) / 1e6 for m in messages
    ]
    assert sum(costs[:-1]) <= 0.5 < sum(costs)
    assert outcome.pid is not None and not alive(outcome.pid)


def test_a_failing_line_callback_still_kills_the_cli(scope: Scope) -> None:
    pids_file = scope.workdir.parent / "pids"

    def explode(line: str) -> None:
        raise RuntimeError("the log store is down")

    with pytest.raises(RuntimeError, match="log store"):
        run(
            argv_for(scope),
            scope,
            on_line=explode,
            FAKE_CLAUDE_MODE="hang",
            FAKE_CLAUDE_PIDS=str(pids_file),
        )
    assert not any(alive(int(pid)) for pid in pids_file.read_text().split())


def test_the_fake_cli_refuses_what_the_real_one_refuses(scope: Scope) -> None:
    import subprocess

    cases = {
        ("-p", "--permission-mode", "notAMode", "--", "x"): "argument --permission-mode",
        ("-p", "--output-format", "stream-json", "--", "x"): "requires --verbose",
        ("-p", "--max-budget-usd", "abc", "--", "x"): "must be a number greater than 0",
        ("-p", "--bogus-flag", "--", "x"): "unrecognized arguments: --bogus-flag",
    }
    for args, message in cases.items():
        done = subprocess.run(
            [sys.executable, str(FAKE_CLAUDE), *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 1, args
        assert message in done.stderr, (args, done.stderr)
