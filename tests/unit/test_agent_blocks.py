"""Templates and the CLI block as block documents on a real Prefect server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from automates.agents.blocks import save_agent_blocks
from automates.agents.llm_cli import LlmCli, load_llm_cli
from automates.agents.templates import (
    BUILTIN_TEMPLATES,
    PermissionTemplate,
    load_template,
    save_builtin_templates,
)
from automates.errors import UnknownLlmCliError, UnknownTemplateError
from automates.settings import Settings
from automates.settings.groups import LlmSettings


@pytest.fixture
def api(server: Settings) -> Iterator[Settings]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield server


FIELDS = [
    "tools",
    "allowed_tools",
    "disallowed_tools",
    "permission_mode",
    "max_turns",
    "add_dirs",
    "append_system_prompt",
    "mcp_servers",
    "layer_tools",
]


def test_builtin_templates_round_trip_through_block_documents(api: Settings) -> None:
    save_builtin_templates()
    for name, builtin in BUILTIN_TEMPLATES.items():
        loaded = load_template(name)
        assert isinstance(loaded, PermissionTemplate)
        assert loaded.model_dump(include=set(FIELDS)) == builtin.model_dump(include=set(FIELDS))


def test_the_sync_loaders_work_inside_a_running_event_loop(api: Settings) -> None:
    # A flow or a tool may call them from async code; they must not start a second loop.
    save_agent_blocks()

    async def from_async_code() -> tuple[PermissionTemplate, LlmCli]:
        return load_template("audit"), load_llm_cli()

    template, cli = asyncio.run(from_async_code())
    assert template.max_turns == BUILTIN_TEMPLATES["audit"].max_turns
    assert cli.executable == "claude"


def test_an_edited_template_is_kept_unless_overwritten(api: Settings) -> None:
    save_builtin_templates()
    edited = load_template("research")
    edited.max_turns = 3
    edited.save("research", overwrite=True)
    save_builtin_templates()  # as every `automates sync` does
    assert load_template("research").max_turns == 3
    save_builtin_templates(overwrite=True)
    assert load_template("research").max_turns == BUILTIN_TEMPLATES["research"].max_turns


def test_an_unknown_template_names_itself_and_the_known_ones(api: Settings) -> None:
    with pytest.raises(UnknownTemplateError, match=r"'audit'.*none saved"):
        load_template("audit")
    save_builtin_templates()
    with pytest.raises(
        UnknownTemplateError,
        match=r"unknown permission template 'reserch'; "
        r"known templates: audit, code, heartbeat, research, routines",
    ):
        load_template("reserch")


def test_the_cli_block_is_saved_from_the_settings(api: Settings) -> None:
    with pytest.raises(UnknownLlmCliError, match="'default'"):
        load_llm_cli()
    settings = Settings(
        llm=LlmSettings(
            cli_executable="/opt/claude/bin/claude",
            agent_models={"scout": "claude-haiku-4-5"},
        )
    )
    written = save_agent_blocks(settings=settings)
    assert sorted(written) == ["audit", "code", "default", "heartbeat", "research", "routines"]
    cli = load_llm_cli()
    assert isinstance(cli, LlmCli)
    assert cli.executable == "/opt/claude/bin/claude"
    assert cli.resolve_model("scout", None) == "claude-haiku-4-5"
    assert save_agent_blocks(settings=settings) == []  # nothing to write the second time
