"""Permission templates render to the CLI's real flags, flag by flag; the CLI block resolves
models and passes only the environment it names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from automates.agents.llm_cli import LlmCli
from automates.agents.templates import BUILTIN_TEMPLATES, PermissionTemplate, Scope
from automates.errors import TemplateError


@pytest.fixture
def scope(tmp_path: Path) -> Scope:
    (tmp_path / "tree").mkdir()
    (tmp_path / "reports").mkdir()
    return Scope(workdir=tmp_path / "tree", report_dir=tmp_path / "reports")


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


def render(
    name: str,
    scope: Scope,
    *,
    model: str = "claude-sonnet-4-6",
    max_budget_usd: float | None = 2.5,
    max_turns: int | None = None,
) -> dict[str, list[str]]:
    cli = LlmCli(executable="/opt/claude/bin/claude")
    argv = cli.command(
        prompt="Do the thing",
        template=BUILTIN_TEMPLATES[name],
        scope=scope,
        model=model,
        max_budget_usd=max_budget_usd,
        max_turns=max_turns,
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
    argv = LlmCli().command(
        prompt="q", template=template, scope=scope, model="m", max_budget_usd=None, max_turns=None
    )
    rendered = flags(argv)
    assert json.loads(rendered["--mcp-config"][0]) == {
        "mcpServers": {"store": {"command": "store-mcp", "args": ["--root", "/srv"]}}
    }
    assert rendered["--strict-mcp-config"] == []
    assert "--tools" not in rendered  # unset: the CLI's default tool set


def test_a_prompt_looking_like_a_flag_stays_the_prompt(scope: Scope) -> None:
    argv = LlmCli().command(
        prompt="--dangerously-skip-permissions",
        template=BUILTIN_TEMPLATES["research"],
        scope=scope,
        model="m",
        max_budget_usd=None,
        max_turns=None,
    )
    assert argv[-2:] == ["--", "--dangerously-skip-permissions"]


def test_audit_without_a_report_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"'audit'.*report_dir"):
        LlmCli().command(
            prompt="x",
            template=BUILTIN_TEMPLATES["audit"],
            scope=Scope(workdir=tmp_path),
            model="m",
            max_budget_usd=None,
            max_turns=None,
            template_name="audit",
        )


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
