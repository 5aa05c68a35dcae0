"""The LLM CLI (Claude Code) as a Prefect block: which executable, which model, which env.

`command()` renders the CLI's real flags (checked against the real CLI in
tests/integration/test_claude_cli.py); `environment()` hands the child only the variables named,
so a task run never inherits the worker's whole environment. An MCP configuration that carries
an environment (the layer's server carries the store's URL) is written to a private file and
named by its path, so no secret is in the argv a task run stores and `ps` shows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from prefect.blocks.core import Block
from pydantic import Field

from automates.agents.layer_tools import PrivateFolder, server_entry
from automates.agents.models import resolve_model
from automates.agents.templates import PermissionTemplate, Scope
from automates.errors import TemplateError, UnknownLlmCliError
from automates.registry.fields import SLUG
from automates.settings import Settings

# The CLI needs these to run at all; everything else must be named in `env_passthrough`.
ALWAYS_PASSED = ("PATH", "HOME")
DEFAULT_PASSTHROUGH = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "LANG", "TZ")
MCP_CONFIG_FILE = "mcp-config.json"
# The layer's MCP server refuses a longer agent name (automates/mcp/__main__.py).
MAX_AGENT_CHARS = 63


class LlmCli(Block):
    """How to spawn the LLM CLI: executable, model resolution, environment passed through."""

    _block_type_name: ClassVar[str] = "Automates LLM CLI"
    _block_type_slug: ClassVar[str] = "automates-llm-cli"
    _description: ClassVar[str] = (
        "The LLM CLI agent task runs spawn (Claude Code): executable, default and per-agent "
        "models, environment variables passed through (see docs/agents.md)."
    )

    executable: str = Field(default="claude", description="Name on PATH, or a path.")
    default_model: str = Field(
        default="claude-sonnet-4-6", description="Used when neither run nor agent names one."
    )
    agent_models: dict[str, str] = Field(
        default_factory=dict, description="Per-agent model preference: agent -> model."
    )
    env_passthrough: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PASSTHROUGH),
        description="Environment variables handed to the CLI (besides PATH and HOME).",
    )

    def resolve_model(self, agent: str, override: str | None) -> str:
        """The run's override, else the agent's preference, else the default."""
        return resolve_model(
            default=self.default_model,
            agent_models=self.agent_models,
            agent=agent,
            override=override,
        )

    def command(
        self,
        *,
        prompt: str,
        template: PermissionTemplate,
        scope: Scope,
        model: str,
        max_budget_usd: float | None,
        max_turns: int | None,
        agent: str,
        template_name: str = "template",
        layer_env: Mapping[str, str] | None = None,
        private: PrivateFolder | None = None,
    ) -> list[str]:
        """The full argv of a non-interactive, streamed run of `prompt` for `agent` under
        `template`. A template with layer tools needs `layer_env` (the settings its server
        reads); an MCP configuration with an environment is written into `private`."""
        rendered = template.render(
            scope, template_name, layer_server=self._layer_server(template, agent, layer_env)
        )
        argv = [self.executable, "-p", "--output-format", "stream-json"]
        # The real CLI refuses stream-json in print mode without --verbose.
        argv += ["--verbose", "--model", model, "--permission-mode", rendered.permission_mode]
        if rendered.tools is not None:
            argv += ["--tools", ",".join(rendered.tools)]
        # The list options are variadic: each rule is its own argument, and the prompt is
        # put after `--` below so that no list swallows it.
        if rendered.allowed_tools:
            argv += ["--allowedTools", *rendered.allowed_tools]
        if rendered.disallowed_tools:
            argv += ["--disallowedTools", *rendered.disallowed_tools]
        if rendered.add_dirs:
            argv += ["--add-dir", *rendered.add_dirs]
        turns = max_turns if max_turns is not None else rendered.max_turns
        if turns is not None:
            argv += ["--max-turns", str(turns)]
        if max_budget_usd is not None:
            argv += ["--max-budget-usd", str(max_budget_usd)]
        if rendered.append_system_prompt:
            argv += ["--append-system-prompt", rendered.append_system_prompt]
        if rendered.mcp_config is not None:
            config = _mcp_config_argument(rendered.mcp_config, private, template_name)
            argv += ["--mcp-config", config, "--strict-mcp-config"]
        return [*argv, "--", prompt]

    @staticmethod
    def _layer_server(
        template: PermissionTemplate, agent: str, layer_env: Mapping[str, str] | None
    ) -> dict[str, Any] | None:
        if not template.layer_tools:
            return None
        # The server takes the agent from its argv (the request's), as a slug of at most 63.
        if not SLUG.fullmatch(agent) or len(agent) > MAX_AGENT_CHARS:
            raise TemplateError(
                f"agent {agent!r}: the layer's tools speak for a slug agent name of at most "
                f"{MAX_AGENT_CHARS} characters"
            )
        if layer_env is None:
            raise TemplateError(
                "the template mounts the layer's tools: the run must give the layer's settings "
                "for their server (layer_env)"
            )
        return server_entry(agent, layer_env)

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """Only PATH, HOME and the passthrough names, from `base`."""
        names = dict.fromkeys([*ALWAYS_PASSED, *self.env_passthrough])
        return {name: base[name] for name in names if name in base}


def _mcp_config_argument(
    config: dict[str, Any], private: PrivateFolder | None, template_name: str
) -> str:
    """The value of --mcp-config: the JSON itself, or the path of a private file holding it
    when a server has an environment (which may hold secrets: argv is stored and visible)."""
    servers = config.get("mcpServers", {}).values()
    if not any(isinstance(server, dict) and server.get("env") for server in servers):
        return json.dumps(config)
    if private is None:
        raise TemplateError(
            f"permission template {template_name!r} gives an MCP server an environment: its "
            "configuration is passed in a private file, and the run gave no private folder"
        )
    return str(private.write(MCP_CONFIG_FILE, json.dumps(config)))


def default_llm_cli(settings: Settings | None = None) -> LlmCli:
    settings = settings or Settings()
    return LlmCli(
        executable=settings.llm.cli_executable,
        default_model=settings.llm.default_model,
        agent_models=dict(settings.llm.agent_models),
    )


async def asave_default_llm_cli(overwrite: bool = False, settings: Settings | None = None) -> bool:
    """Save the settings' CLI block (name: AUTOMATES_LLM_CLI_BLOCK); whether it was written."""
    settings = settings or Settings()
    if not overwrite:
        try:
            await LlmCli.aload(settings.llm.cli_block)
            return False
        except ValueError:
            pass
    await default_llm_cli(settings).asave(settings.llm.cli_block, overwrite=True)
    return True


async def aload_llm_cli(name: str = "default") -> LlmCli:
    try:
        return await LlmCli.aload(name)
    except ValueError:
        raise _unknown(name) from None


def load_llm_cli(name: str = "default") -> LlmCli:
    try:
        loaded = LlmCli.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError:
        raise _unknown(name) from None
    return cast(LlmCli, loaded)


def _unknown(name: str) -> UnknownLlmCliError:
    return UnknownLlmCliError(
        f"no automates-llm-cli block named {name!r}; `automates sync` saves the default one"
    )
