"""The real Claude Code CLI (pinned, installed by npm, run offline) as the test client.

Without credentials the CLI starts, echoes its configuration in an `init` event and ends with a
real not-logged-in `result` event: that proves every template's flags are accepted. Pointed at
a fake Messages API on loopback (ANTHROPIC_BASE_URL), the same CLI runs real turns: the fake
model asks for tool calls and the CLI's own permission engine decides, which proves what the
templates' rules allow and deny on disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from automates.agents.llm_cli import LlmCli
from automates.agents.process import CliOutcome, run_cli
from automates.agents.templates import BUILTIN_TEMPLATES, PermissionTemplate, Scope
from tests.fixtures.claude_cli import install
from tests.fixtures.fake_claude.messages_api import FakeMessagesApi, Reply, serve, text, tool_use


@pytest.fixture(scope="session")
def claude_cli() -> Path:
    """The real CLI's executable, installed from the pinned lock (npm ci, once)."""
    return install()


@pytest.fixture
def scope(tmp_path: Path) -> Scope:
    for folder in ("tree", "reports", "home", "elsewhere"):
        (tmp_path / folder).mkdir()
    (tmp_path / "tree" / "notes.md").write_text("original notes\n")
    return Scope(workdir=tmp_path / "tree", report_dir=tmp_path / "reports")


def launch(
    executable: Path,
    template: PermissionTemplate,
    scope: Scope,
    *,
    api_url: str | None = None,
    lines: list[str] | None = None,
) -> CliOutcome:
    cli = LlmCli(executable=str(executable))
    argv = cli.command(
        prompt="Do your task.",
        template=template,
        scope=scope,
        model="claude-sonnet-4-6",
        max_budget_usd=5.0,
        max_turns=None,
    )
    # A scratch HOME: no login, no user settings of whoever runs the tests.
    base = {"PATH": os.environ["PATH"], "HOME": str(scope.workdir.parent / "home")}
    if api_url is not None:
        base |= {"ANTHROPIC_BASE_URL": api_url, "ANTHROPIC_API_KEY": "sk-test-key"}
    sink = lines if lines is not None else []
    return run_cli(
        argv,
        cwd=scope.workdir,
        env=cli.environment(base),
        timeout_seconds=120,
        max_budget_usd=5.0,
        on_start=None,
        on_line=sink.append,
    )


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES))
def test_every_template_is_accepted_and_a_not_logged_in_run_is_a_clean_failure(
    claude_cli: Path, scope: Scope, name: str
) -> None:
    lines: list[str] = []
    outcome = launch(claude_cli, BUILTIN_TEMPLATES[name], scope, lines=lines)
    events = [json.loads(line) for line in lines]
    init = events[0]
    assert (init["type"], init["subtype"]) == ("system", "init")
    assert init["permissionMode"] == "dontAsk"
    assert sorted(init["tools"]) == sorted(BUILTIN_TEMPLATES[name].tools or [])
    assert init["model"] == "claude-sonnet-4-6"
    assert init["cwd"] == str(scope.workdir)
    if name == "audit":
        assert init["additional_directories"] == [str(scope.report_dir)]
    result = events[-1]
    assert result["type"] == "result"
    assert result["terminal_reason"] == "api_error"
    # The real run ends as a clean `failed` outcome, with the cost and tokens it reported.
    assert outcome.status == "failed"
    assert outcome.exit_code == 1
    assert outcome.terminal_reason == "api_error"
    assert outcome.cost_usd == result["total_cost_usd"] == 0
    assert (outcome.input_tokens, outcome.output_tokens) == (0, 0)
    assert outcome.session_id == init["session_id"]
    assert outcome.error is not None and "Not logged in" in outcome.error


def test_mcp_servers_reach_the_real_cli(claude_cli: Path, scope: Scope) -> None:
    template = PermissionTemplate(
        tools=["Read"],
        allowed_tools=["Read"],
        mcp_servers={"store": {"command": "/bin/false"}},
    )
    lines: list[str] = []
    launch(claude_cli, template, scope, lines=lines)
    init = json.loads(lines[0])
    assert [server["name"] for server in init["mcp_servers"]] == ["store"]


def scripted(steps: list[Reply]) -> Callable[[dict[str, Any]], Reply]:
    """The fake model: the n-th turn of the conversation gets steps[n], then a last answer."""

    def respond(request: dict[str, Any]) -> Reply:
        turn = sum(1 for message in request.get("messages", []) if message["role"] == "assistant")
        return steps[turn] if turn < len(steps) else text("All done.", 500, 50)

    return respond


def denied_paths(outcome_lines: list[str]) -> list[str]:
    result = json.loads(outcome_lines[-1])
    return [denial["tool_input"].get("file_path", "") for denial in result["permission_denials"]]


def tool_results(lines: list[str]) -> list[str]:
    results = []
    for line in lines:
        event = json.loads(line)
        if event["type"] == "user":
            for block in event["message"]["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    content = block["content"]
                    results.append(content if isinstance(content, str) else json.dumps(content))
    return results


def test_the_audit_template_writes_only_inside_its_report_folder(
    claude_cli: Path, scope: Scope
) -> None:
    assert scope.report_dir is not None
    tree, reports, root = scope.workdir, scope.report_dir, scope.workdir.parent
    attempts = {
        "write in the tree": tree / "outside.md",
        "write beside the tree": root / "elsewhere" / "x.md",
        "write through ..": Path(f"{reports}/../escape.md"),
        "write in a look-alike folder": Path(f"{reports}-evil/x.md"),
    }
    steps = [
        tool_use("Write", {"file_path": str(path), "content": "x"}) for path in attempts.values()
    ]
    steps += [
        tool_use(
            "Edit",
            {"file_path": str(tree / "notes.md"), "old_string": "original", "new_string": "evil"},
        ),
        tool_use("Bash", {"command": f"echo x > {tree / 'by-shell.md'}"}),
        tool_use("Write", {"file_path": str(reports / "report.md"), "content": "# Findings\n"}),
    ]
    lines: list[str] = []
    with serve(FakeMessagesApi(responder=scripted(steps))) as api:
        outcome = launch(
            claude_cli, BUILTIN_TEMPLATES["audit"], scope, api_url=api.url, lines=lines
        )
    assert outcome.status == "completed", outcome.error
    # Only the report was written; nothing else exists or changed.
    assert (reports / "report.md").read_text() == "# Findings\n"
    for label, path in attempts.items():
        assert not path.exists(), label
    assert (tree / "notes.md").read_text() == "original notes\n"
    assert not (tree / "by-shell.md").exists()
    # And the CLI says why: each write and the edit was denied by its permission engine.
    # (The CLI reports the path it resolved: `reports/../escape.md` as `escape.md`.)
    denied = denied_paths(lines)
    expected = [os.path.normpath(path) for path in [*attempts.values(), tree / "notes.md"]]
    assert sorted(denied) == sorted(expected)
    assert any("No such tool available: Bash" in result for result in tool_results(lines))
    # A real completed run: the CLI's own cost and tokens, parsed from its result event.
    result = json.loads(lines[-1])
    assert outcome.cost_usd == pytest.approx(result["total_cost_usd"]) and outcome.cost_usd > 0
    assert outcome.input_tokens == result["usage"]["input_tokens"] > 0


def test_the_code_template_edits_only_its_tree_and_runs_only_listed_commands(
    claude_cli: Path, scope: Scope
) -> None:
    tree, root = scope.workdir, scope.workdir.parent
    steps = [
        tool_use(
            "Edit",
            {"file_path": str(tree / "notes.md"), "old_string": "original", "new_string": "edited"},
        ),
        tool_use("Write", {"file_path": str(root / "elsewhere" / "x.md"), "content": "x"}),
        tool_use("Bash", {"command": f"touch {root / 'elsewhere' / 'by-shell.md'}"}),
        tool_use("Bash", {"command": "ls -a"}),
    ]
    lines: list[str] = []
    with serve(FakeMessagesApi(responder=scripted(steps))) as api:
        outcome = launch(claude_cli, BUILTIN_TEMPLATES["code"], scope, api_url=api.url, lines=lines)
    assert outcome.status == "completed", outcome.error
    assert (tree / "notes.md").read_text() == "edited notes\n"
    assert not (root / "elsewhere" / "x.md").exists()
    assert not (root / "elsewhere" / "by-shell.md").exists()
    result = json.loads(lines[-1])
    denied = [(d["tool_name"], json.dumps(d["tool_input"])) for d in result["permission_denials"]]
    assert [tool for tool, _ in denied] == ["Write", "Bash"]
    assert "by-shell.md" in denied[1][1]
    assert any("notes.md" in output for output in tool_results(lines)[-1:])  # `ls -a` ran


def test_the_research_template_cannot_write_at_all(claude_cli: Path, scope: Scope) -> None:
    tree = scope.workdir
    steps = [
        tool_use("Write", {"file_path": str(tree / "new.md"), "content": "x"}),
        tool_use("Read", {"file_path": str(tree / "notes.md")}),
    ]
    lines: list[str] = []
    with serve(FakeMessagesApi(responder=scripted(steps))) as api:
        outcome = launch(
            claude_cli, BUILTIN_TEMPLATES["research"], scope, api_url=api.url, lines=lines
        )
    assert outcome.status == "completed", outcome.error
    assert not (tree / "new.md").exists()
    results = tool_results(lines)
    assert "No such tool available: Write" in results[0]
    assert "original notes" in results[1]


def test_a_flag_the_real_cli_refuses_is_a_clean_failure(claude_cli: Path, scope: Scope) -> None:
    outcome = run_cli(
        [str(claude_cli), "-p", "--permission-mode", "notAMode", "--", "x"],
        cwd=scope.workdir,
        env={"PATH": os.environ["PATH"], "HOME": str(scope.workdir.parent / "home")},
        timeout_seconds=60,
        max_budget_usd=None,
        on_start=None,
        on_line=lambda line: None,
    )
    assert outcome.status == "failed"
    assert outcome.exit_code == 1
    assert outcome.error is not None
    assert "argument 'notAMode' is invalid" in outcome.error


def test_without_npm_the_install_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node, no npm
    with pytest.raises(pytest.fail.Exception, match="node and npm are needed"):
        install()
