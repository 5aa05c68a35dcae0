"""The real Claude Code CLI (pinned, installed by npm, run offline) as the test client.

Without credentials the CLI starts, echoes its configuration in an `init` event and ends with a
real not-logged-in `result` event: that proves every template's flags are accepted. Pointed at
a fake Messages API on loopback (ANTHROPIC_BASE_URL), the same CLI runs real turns: the fake
model asks for tool calls and the CLI's own permission engine decides, which proves what the
templates' rules allow and deny on disk. The layer's own MCP server, mounted by a template with
layer tools, is the real one (`python -m automates.mcp`) on a scratch store: the CLI connects
to it, and the fake model's call reaches it through the CLI's permission engine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text as sql_text

from automates.agents.layer_tools import PrivateFolder, server_environment
from automates.agents.llm_cli import LlmCli
from automates.agents.process import CliOutcome, run_cli
from automates.agents.templates import BUILTIN_TEMPLATES, PermissionTemplate, Scope
from automates.settings import Settings
from automates.store.engine import make_engine, migrate
from tests.conftest import REPO
from tests.fixtures.claude_cli import install
from tests.fixtures.fake_claude.messages_api import FakeMessagesApi, Reply, serve, text, tool_use
from tests.fixtures.layer_tools import LAYER_TOOLS, ROUTINE_TOOLS
from tests.fixtures.projects import automate, registry_yaml

# The routine tools of the layer's server (decision 0043); it may serve more.


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


@pytest.fixture
def layer_store(scratch_database: str) -> Iterator[str]:
    """A scratch store, migrated: the database the layer's MCP server journals into."""
    engine = make_engine(scratch_database)
    migrate(engine)
    engine.dispose()
    yield scratch_database


@pytest.fixture
def layer_env(layer_store: str, tmp_path: Path) -> dict[str, str]:
    """The layer's settings for its MCP server, as a task run builds them: the scratch store,
    and a registry whose one operator automate lists the agent `scout`."""
    registry = tmp_path / "registry.yaml"
    ops = automate("ops-report", kind="oneshot", schedules=[], agents=["scout"])
    registry.write_text(registry_yaml({"automates": [ops]}))
    # No Prefect API is reached by the tools these tests call (nothing listens on port 9).
    settings = Settings(
        project_root=REPO, registry_file=registry, prefect_api_url="http://127.0.0.1:9/api"
    )
    return server_environment(settings, layer_store, {})


def launch(
    executable: Path,
    template: PermissionTemplate,
    scope: Scope,
    *,
    api_url: str | None = None,
    lines: list[str] | None = None,
    layer_env: dict[str, str] | None = None,
    argv_seen: list[str] | None = None,
) -> CliOutcome:
    """Run the real CLI under `template` for the agent `scout`; an MCP configuration with an
    environment is in a private file, removed at the init event as a task run does."""
    cli = LlmCli(executable=str(executable))
    # A scratch HOME: no login, no user settings of whoever runs the tests.
    base = {"PATH": os.environ["PATH"], "HOME": str(scope.workdir.parent / "home")}
    if api_url is not None:
        base |= {"ANTHROPIC_BASE_URL": api_url, "ANTHROPIC_API_KEY": "sk-test-key"}
    sink = lines if lines is not None else []
    with PrivateFolder() as private:
        argv = cli.command(
            prompt="Do your task.",
            template=template,
            scope=scope,
            model="claude-sonnet-4-6",
            max_budget_usd=5.0,
            max_turns=None,
            agent="scout",
            layer_env=layer_env,
            private=private,
        )
        if argv_seen is not None:
            argv_seen.extend(argv)
        return run_cli(
            argv,
            cwd=scope.workdir,
            env=cli.environment(base),
            timeout_seconds=120,
            max_budget_usd=5.0,
            on_start=None,
            on_line=sink.append,
            on_init=private.close,
        )


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES))
def test_every_template_is_accepted_and_a_not_logged_in_run_is_a_clean_failure(
    claude_cli: Path, scope: Scope, name: str, request: pytest.FixtureRequest
) -> None:
    template = BUILTIN_TEMPLATES[name]
    # A template with the layer's tools mounts the real server, on a scratch store.
    layer_env = request.getfixturevalue("layer_env") if template.layer_tools else None
    lines: list[str] = []
    outcome = launch(claude_cli, template, scope, lines=lines, layer_env=layer_env)
    events = [json.loads(line) for line in lines]
    init = events[0]
    assert (init["type"], init["subtype"]) == ("system", "init")
    assert init["permissionMode"] == "dontAsk"
    # --tools limits the built-in tools; the MCP servers' tools come on top of them.
    builtin = [tool for tool in init["tools"] if not tool.startswith("mcp__")]
    assert sorted(builtin) == sorted(template.tools or [])
    mounted = {tool.removeprefix("mcp__automates__") for tool in init["tools"]} - set(builtin)
    if template.layer_tools:
        assert [(s["name"], s["status"]) for s in init["mcp_servers"]] == [
            ("automates", "connected")
        ]
        assert outcome.mcp_servers == (("automates", "connected"),)
        assert mounted == LAYER_TOOLS  # listed by the layer's server itself
    else:
        assert init["mcp_servers"] == [] and mounted == set()
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


def test_an_mcp_server_that_cannot_start_stops_the_run_before_any_turn(
    claude_cli: Path, scope: Scope
) -> None:
    template = PermissionTemplate(
        tools=["Read"],
        allowed_tools=["Read"],
        mcp_servers={"store": {"command": "false"}},
    )
    lines: list[str] = []
    # A model is there, asking for a tool at every turn: without the stop, the CLI would go on
    # without the server, turn after turn.
    read = tool_use("Read", {"file_path": str(scope.workdir / "notes.md")})
    with serve(FakeMessagesApi(responder=lambda request: read)) as api:
        outcome = launch(claude_cli, template, scope, api_url=api.url, lines=lines)
    assert outcome.status == "failed"
    assert outcome.error == (
        "MCP server 'store' is failed, not connected; stopped before any model turn"
    )
    assert outcome.mcp_servers == (("store", "failed"),)
    # Nothing after the init event was taken: no turn, no tool. (The CLI sends its first
    # request as it prints the init event, so that one request may have left already.)
    assert [json.loads(line)["subtype"] for line in lines] == ["init"]
    assert len(api.requests) <= 1
    assert (outcome.cost_usd, outcome.input_tokens, outcome.output_tokens) == (0, 0, 0)
    assert outcome.result_text is None


def test_the_layer_server_failing_to_start_stops_the_run(claude_cli: Path, scope: Scope) -> None:
    # Settings the server refuses (a store that is not PostgreSQL): it exits at start-up.
    broken = {"AUTOMATES_DATABASE_URL": "mysql://root@127.0.0.1/automates"}
    lines: list[str] = []
    outcome = launch(
        claude_cli, BUILTIN_TEMPLATES["routines"], scope, lines=lines, layer_env=broken
    )
    assert outcome.status == "failed"
    assert outcome.error == (
        "MCP server 'automates' is failed, not connected; stopped before any model turn"
    )
    assert [json.loads(line)["subtype"] for line in lines] == ["init"]


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


def test_an_agent_reaches_its_layer_tools_through_the_cli_and_never_their_secret(
    claude_cli: Path, scope: Scope, layer_env: dict[str, str], layer_store: str
) -> None:
    # The routines template, one layer tool withheld by a deny rule.
    routines = BUILTIN_TEMPLATES["routines"]
    denied_tool = "mcp__automates__delete_routine"
    template = routines.model_copy(
        update={"disallowed_tools": [*routines.disallowed_tools, denied_tool]}
    )
    argv: list[str] = []
    servers: list[int] = []

    def config_file() -> str:
        return argv[argv.index("--mcp-config") + 1]

    def server_environ() -> str:
        # The running server of this test: the process whose environment holds its store.
        servers.extend(processes_with(layer_store))
        return f"/proc/{servers[0]}/environ"

    # The fake model: the layer's tools, then the ways to the store's URL it might try.
    steps: list[Callable[[], Reply]] = [
        lambda: tool_use("mcp__automates__list_routines", {}),
        lambda: tool_use(denied_tool, {"name": "ops-report"}),
        lambda: tool_use("Read", {"file_path": config_file()}),
        lambda: tool_use("Read", {"file_path": server_environ()}),
    ]

    def respond(request: dict[str, Any]) -> Reply:
        turn = sum(1 for message in request["messages"] if message["role"] == "assistant")
        return steps[turn]() if turn < len(steps) else text("All done.", 500, 50)

    lines: list[str] = []
    with serve(FakeMessagesApi(responder=respond)) as api:
        outcome = launch(
            claude_cli,
            template,
            scope,
            api_url=api.url,
            lines=lines,
            layer_env=layer_env,
            argv_seen=argv,
        )
    assert outcome.status == "completed", outcome.error
    # The model was offered the layer's tools, all but the one denied.
    offered = {tool["name"] for tool in api.requests[0]["tools"]}
    assert {f"mcp__automates__{tool}" for tool in ROUTINE_TOOLS} - offered == {denied_tool}
    listed, denied, config_read, environ_read = tool_results(lines)
    # The real server answered the allowed call (under dontAsk: allowed by mcp__automates),
    # for the agent of the command line; the denied tool does not exist for the model.
    answer = json.loads(listed)
    assert answer["agent"] == "scout"
    assert [(r["name"], r["yours"]) for r in answer["routines"]] == [("ops-report", False)]
    assert f"No such tool available: {denied_tool}" in denied
    # The server journaled the call it served, and only that one.
    engine = make_engine(layer_store)
    with engine.connect() as connection:
        calls = connection.execute(
            sql_text("SELECT agent, tool, outcome FROM automates.agent_tool_calls")
        ).all()
    engine.dispose()
    assert [tuple(call) for call in calls] == [("scout", "list_routines", "ok")]
    # The store's URL reached the server through the private file, never through argv. The
    # file was removed at the init event (the calls after it still worked), and the CLI's Read
    # does not read a process's environment: nothing of the URL reached the model.
    assert layer_store not in " ".join(argv)
    assert "does not exist" in config_read and not Path(config_file()).exists()
    assert "does not read" in environ_read and len(servers) == 1
    assert not any(layer_store in json.dumps(request) for request in api.requests)
    # The server went with the CLI's process group: no process holds the store's URL.
    assert not processes_with(layer_store)


def processes_with(value: str) -> list[int]:
    """The pids of this user's processes whose environment holds `value`."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if value.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:  # gone, or not ours
            continue
    return found


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
