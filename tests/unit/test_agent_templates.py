"""Permission templates render to the CLI's real flags, flag by flag; the CLI block resolves
models and passes only the environment it names; the layer's tools are mounted for the run's
agent, their configuration (which holds the store's URL) in a private file, never in argv."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from automates.agents.layer_tools import PrivateFolder, server_environment
from automates.agents.llm_cli import LlmCli
from automates.agents.templates import BUILTIN_TEMPLATES, PermissionTemplate, Scope
from automates.errors import TemplateError
from automates.settings import Settings
from automates.settings.groups import AgentSettings, BrowserSettings, GateSettings
from tests.fixtures.agent_scope import SECRET_URL

LAYER_ENV = {"AUTOMATES_DATABASE_URL": SECRET_URL, "AUTOMATES_WORK_POOL": "local"}


def flags(argv: list[str]) -> dict[str, list[str]]:
    """argv as {flag: [values]}, the prompt under "--"; a repeated flag would be a bug."""
    parsed: dict[str, list[str]] = {}
    current = "<executable>"
    parsed[current] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            parsed["--"] = argv[index + 1 :]
            break
        if arg.startswith("-"):
            assert arg not in parsed, f"{arg} given twice"
            current = arg
            parsed[current] = []
        else:
            parsed[current].append(arg)
    return parsed


def command(
    template: PermissionTemplate, scope: Scope, *, cli: LlmCli | None = None, **options: Any
) -> list[str]:
    """The argv of a run of `template` by agent scout: prompt "q", model "m", no budget and no
    turn limit, unless `options` (LlmCli.command's keywords) say otherwise."""
    bare = {
        "prompt": "q",
        "model": "m",
        "max_budget_usd": None,
        "max_turns": None,
        "agent": "scout",
    }
    return (cli or LlmCli()).command(template=template, scope=scope, **(bare | options))


def render(
    name: str,
    scope: Scope,
    *,
    model: str = "claude-sonnet-4-6",
    max_budget_usd: float | None = 2.5,
    max_turns: int | None = None,
    private: PrivateFolder | None = None,
) -> dict[str, list[str]]:
    argv = command(
        BUILTIN_TEMPLATES[name],
        scope,
        cli=LlmCli(executable="/opt/claude/bin/claude"),
        prompt="Do the thing",
        model=model,
        max_budget_usd=max_budget_usd,
        max_turns=max_turns,
        layer_env=LAYER_ENV,
        private=private,
    )
    return flags(argv)


COMMON = {
    "<executable>": ["/opt/claude/bin/claude"],
    "-p": [],
    "--output-format": ["stream-json"],
    "--verbose": [],
    "--model": ["claude-sonnet-4-6"],
    "--permission-mode": ["dontAsk"],
    "--max-budget-usd": ["2.5"],
    "--": ["Do the thing"],
}


def test_research_renders_read_only_flags(scope: Scope) -> None:
    rendered = render("research", scope)
    assert rendered == {
        **COMMON,
        "--tools": ["Read,Grep,Glob,WebSearch,WebFetch"],
        "--allowedTools": ["Read", "Grep", "Glob", "WebSearch", "WebFetch"],
        "--disallowedTools": ["Edit", "Write", "Bash", "NotebookEdit"],
        "--max-turns": ["30"],
        "--append-system-prompt": [
            f"You are running a read-only research task in {scope.workdir}. You cannot edit "
            "files or run commands; report your findings in your answer."
        ],
    }


def test_audit_allows_edits_only_under_the_report_folder(scope: Scope) -> None:
    rendered = render("audit", scope)
    assert rendered == {
        **COMMON,
        "--tools": ["Read,Grep,Glob,Edit,Write"],
        # `//` makes the rule absolute from the file-system root in Claude Code's syntax.
        "--allowedTools": ["Read", "Grep", "Glob", f"Edit(/{scope.report_dir}/**)"],
        "--disallowedTools": ["Bash", "NotebookEdit"],
        "--add-dir": [str(scope.report_dir)],
        "--max-turns": ["40"],
        "--append-system-prompt": [
            f"You are running an audit of {scope.workdir}. Write your report only inside "
            f"{scope.report_dir}; writes anywhere else are denied."
        ],
    }
    edit_rules = [rule for rule in rendered["--allowedTools"] if rule.startswith("Edit")]
    assert edit_rules == [f"Edit(//{str(scope.report_dir).lstrip('/')}/**)"]
    # Nothing else in the template can write: no bare Edit/Write grant, no shell at all.
    assert "Edit" not in rendered["--allowedTools"]
    assert not any(rule.startswith(("Write", "Bash")) for rule in rendered["--allowedTools"])
    assert "Bash" not in rendered["--tools"][0].split(",")


def test_code_confines_edits_to_the_working_tree_and_lists_its_commands(scope: Scope) -> None:
    rendered = render("code", scope, max_turns=7, max_budget_usd=None, model="opus")
    assert rendered["--model"] == ["opus"]
    assert rendered["--max-turns"] == ["7"]  # the run's override beats the template's 60
    assert "--max-budget-usd" not in rendered
    assert rendered["--tools"] == ["Read,Grep,Glob,Edit,Write,Bash"]
    assert rendered["--allowedTools"] == [
        "Read",
        "Grep",
        "Glob",
        f"Edit(/{scope.workdir}/**)",
        "Bash(git status)",
        "Bash(git diff *)",
        "Bash(git log *)",
        "Bash(ls *)",
        "Bash(pytest *)",
        "Bash(python -m pytest *)",
    ]
    assert "Bash" not in rendered["--allowedTools"]  # no blanket shell grant
    assert "Bash(git push *)" in rendered["--disallowedTools"]
    assert "--add-dir" not in rendered
    assert rendered["--permission-mode"] == ["dontAsk"]


def test_mcp_servers_render_to_a_strict_inline_config(scope: Scope) -> None:
    template = PermissionTemplate(
        allowed_tools=["Read", "mcp__store__query"],
        mcp_servers={"store": {"command": "store-mcp", "args": ["--root", "/srv"]}},
    )
    rendered = flags(command(template, scope))
    assert json.loads(rendered["--mcp-config"][0]) == {
        "mcpServers": {"store": {"command": "store-mcp", "args": ["--root", "/srv"]}}
    }
    assert rendered["--strict-mcp-config"] == []
    assert "--tools" not in rendered  # unset: the CLI's default tool set


def test_routines_mounts_the_layer_server_for_the_agent_through_a_private_file(
    scope: Scope, private: PrivateFolder
) -> None:
    rendered = render("routines", scope, private=private)
    config_path = Path(rendered.pop("--mcp-config")[0])
    assert rendered == {
        **COMMON,
        "--tools": ["Read,Grep,Glob,WebSearch,WebFetch"],
        # The research rules, and one rule allowing every tool of the layer's server.
        "--allowedTools": ["Read", "Grep", "Glob", "WebSearch", "WebFetch", "mcp__automates"],
        "--disallowedTools": ["Edit", "Write", "Bash", "NotebookEdit"],
        "--max-turns": ["30"],
        "--append-system-prompt": [
            f"You are running a read-only task in {scope.workdir}: you cannot edit files or run "
            "commands. Your routines (prompts the layer runs for you on a schedule) are reached "
            "through the automates tools (mcp__automates__*): list, preview, create, update, "
            "pause, resume, run and delete them. A new or changed routine may wait for the "
            "operator's approval; say so in your answer."
        ],
        "--strict-mcp-config": [],
    }
    # The configuration is a file only this user can read, in a folder only this user enters.
    assert config_path.parent == private.path
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_path.parent.stat().st_mode) == 0o700
    assert json.loads(config_path.read_text()) == {
        "mcpServers": {
            "automates": {
                "command": sys.executable,
                "args": ["-m", "automates.mcp", "--agent", "scout"],
                "env": LAYER_ENV,
            }
        }
    }
    # The store's URL (its password) is in the file, nowhere in the argv that is stored.
    argv_text = json.dumps(rendered)
    assert "s3cret-pw" not in argv_text and "AUTOMATES_DATABASE_URL" not in argv_text
    private.close()
    assert not config_path.exists() and not config_path.parent.exists()


def test_layer_tools_need_the_settings_a_slug_agent_and_a_private_folder(
    scope: Scope, private: PrivateFolder
) -> None:
    routines = BUILTIN_TEMPLATES["routines"]

    def run(agent: str, layer_env: dict[str, str] | None, folder: PrivateFolder | None) -> None:
        command(
            routines,
            scope,
            agent=agent,
            template_name="routines",
            layer_env=layer_env,
            private=folder,
        )

    with pytest.raises(TemplateError, match="layer's settings"):
        run("scout", None, private)
    for agent in ("--help", "Scout", "scout\n", "a" * 64):
        with pytest.raises(TemplateError, match="slug agent name of at most 63"):
            run(agent, LAYER_ENV, private)
    with pytest.raises(TemplateError, match=r"'routines'.*private file"):
        run("scout", LAYER_ENV, None)
    assert private.path is None  # nothing was written by the refused commands
    # Rendered without the CLI block, the template refuses as well.
    with pytest.raises(TemplateError, match=r"'routines' mounts the layer's tools"):
        routines.render(scope, "routines")


def test_layer_tools_can_be_withheld_one_by_one_and_keep_their_server_name(
    scope: Scope, private: PrivateFolder
) -> None:
    template = PermissionTemplate(
        tools=["Read"],
        allowed_tools=["Read", "mcp__automates"],  # given twice: rendered once
        disallowed_tools=["mcp__automates__delete_routine"],
        layer_tools=True,
        mcp_servers={"docs": {"command": "docs-mcp"}},
    )
    rendered = flags(command(template, scope, agent="atlas", layer_env={}, private=private))
    assert rendered["--allowedTools"] == ["Read", "mcp__automates"]
    assert rendered["--disallowedTools"] == ["mcp__automates__delete_routine"]
    # No environment at all: the configuration stays inline, and both servers are in it.
    config = json.loads(rendered["--mcp-config"][0])
    assert sorted(config["mcpServers"]) == ["automates", "docs"]
    assert config["mcpServers"]["automates"]["args"][-2:] == ["--agent", "atlas"]
    assert private.path is None
    with pytest.raises(ValidationError, match="'automates' is the layer's own server"):
        PermissionTemplate(layer_tools=True, mcp_servers={"automates": {"command": "x"}})


def test_any_mcp_server_with_an_environment_goes_through_the_private_file(
    scope: Scope, private: PrivateFolder
) -> None:
    template = PermissionTemplate(
        mcp_servers={"tickets": {"command": "tickets-mcp", "env": {"TICKETS_TOKEN": "tk-123"}}}
    )
    argv = command(template, scope, private=private)
    assert "tk-123" not in " ".join(argv)
    path = Path(flags(argv)["--mcp-config"][0])
    assert json.loads(path.read_text())["mcpServers"]["tickets"]["env"] == {
        "TICKETS_TOKEN": "tk-123"
    }


def test_the_layer_server_environment_carries_what_the_server_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        project_root=tmp_path,
        work_pool="pool-a",
        prefect_api_url="http://127.0.0.1:4999/api",
        agent=AgentSettings(trusted=("scout",), min_interval_seconds=600),
        # The layer's other credentials, given explicitly: the server reads none of them.
        gate=GateSettings(worker_token=SecretStr("gate-token-the-server-must-not-see")),
        browser=BrowserSettings(payload_key=SecretStr("payload-key-the-server-must-not-see")),
    )
    environ = {"PREFECT_API_AUTH_STRING": "admin:pw", "AWS_SECRET_ACCESS_KEY": "x", "PATH": "/b"}
    env = server_environment(settings, SECRET_URL, environ)
    assert not any("must-not-see" in value for value in env.values()), env
    assert env["AUTOMATES_DATABASE_URL"] == SECRET_URL  # the store the task run uses
    assert env["AUTOMATES_PROJECT_ROOT"] == str(tmp_path)
    assert env["AUTOMATES_REGISTRY_FILE"] == str(tmp_path / "deployments" / "registry.yaml")
    assert env["AUTOMATES_DATA_DIR"] == str(tmp_path / ".data")
    assert env["PREFECT_API_URL"] == settings.api_url
    assert env["PREFECT_API_AUTH_STRING"] == "admin:pw"  # the API the worker reaches
    assert "AWS_SECRET_ACCESS_KEY" not in env and "PATH" not in env
    # Read back the way the server reads them (its environment only), they are these settings.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    served = Settings()
    assert served.database_url == SECRET_URL
    assert served.project_root == tmp_path and served.registry_path == settings.registry_path
    assert served.data_path == settings.data_path
    assert served.api_url == "http://127.0.0.1:4999/api"
    assert served.work_pool == "pool-a"
    assert served.agent.trusted == ("scout",)
    assert served.agent.min_interval_seconds == 600


def test_a_prompt_looking_like_a_flag_stays_the_prompt(scope: Scope) -> None:
    argv = command(BUILTIN_TEMPLATES["research"], scope, prompt="--dangerously-skip-permissions")
    assert argv[-2:] == ["--", "--dangerously-skip-permissions"]


def test_audit_without_a_report_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"'audit'.*report_dir"):
        command(BUILTIN_TEMPLATES["audit"], Scope(workdir=tmp_path), template_name="audit")


def test_unknown_placeholders_and_modes_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"allowed_tools[\s\S]*unknown placeholder.*home"):
        PermissionTemplate(allowed_tools=["Edit({home}/**)"])
    with pytest.raises(ValidationError, match="permission_mode"):
        PermissionTemplate(permission_mode="yolo")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="max_turns"):
        PermissionTemplate(max_turns=0)


def test_scope_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    scope = Scope(workdir=Path("tree"), report_dir=Path("out"))
    assert scope.workdir == tmp_path / "tree"
    assert scope.report_dir == tmp_path / "out"
    with pytest.raises(ValidationError):
        Scope(workdir=tmp_path, unexpected=1)  # type: ignore[call-arg]


def test_model_resolution_order() -> None:
    cli = LlmCli(default_model="claude-sonnet-4-6", agent_models={"scout": "claude-haiku-4-5"})
    assert cli.resolve_model("scout", "claude-opus-4-5") == "claude-opus-4-5"
    assert cli.resolve_model("scout", None) == "claude-haiku-4-5"
    assert cli.resolve_model("builder", None) == "claude-sonnet-4-6"


def test_environment_passes_only_the_names_given() -> None:
    cli = LlmCli(env_passthrough=["ANTHROPIC_API_KEY", "MISSING"])
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/agent",
        "ANTHROPIC_API_KEY": "sk-1",
        "AUTOMATES_DATABASE_URL": "postgresql://secret",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    assert cli.environment(base) == {
        "PATH": "/usr/bin",
        "HOME": "/home/agent",
        "ANTHROPIC_API_KEY": "sk-1",
    }
