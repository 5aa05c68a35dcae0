"""Permission templates: what an agent task run may do, saved as Prefect blocks.

A template is rendered against a `Scope` (the perimeter's working tree and, for audits, a report
folder) into the LLM CLI's permission flags. The CLI runs with `--permission-mode dontAsk`, in
which any tool call not matched by an allow rule is denied rather than prompted for, so the
allow rules below are the whole perimeter (docs/agents.md, "Why the rules hold").

Rules and texts may reference `{workdir}` and `{report_dir}`; both render as absolute paths.
Claude Code reads a path rule starting with `//` as absolute from the file-system root, hence
`Edit(/{report_dir}/**)` in the templates (`/` + `/abs/path`).

A template with `layer_tools` mounts the layer's own MCP server (`automates`: the agent's
routines, decision 0043) for the run's agent and allows its tools (`mcp__automates`); the
server's entry is built by the caller (automates/agents/layer_tools.py), which knows the agent
and the settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, cast

from prefect.blocks.core import Block
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from automates.agents.layer_tools import ALLOW_RULE as LAYER_RULE
from automates.agents.layer_tools import SERVER_NAME as LAYER_SERVER
from automates.errors import TemplateError, UnknownTemplateError

PermissionMode = Literal["acceptEdits", "auto", "bypassPermissions", "manual", "dontAsk", "plan"]
PLACEHOLDERS = frozenset({"workdir", "report_dir"})
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class Scope(BaseModel):
    """The perimeter a task run works in: its working tree, and an audit's report folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workdir: Path
    report_dir: Path | None = None

    @field_validator("workdir", "report_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        # Rules are rendered with these paths; a relative one would be read from the CLI's cwd.
        return None if value is None else value.expanduser().resolve()

    def values(self) -> dict[str, str]:
        values = {"workdir": str(self.workdir)}
        if self.report_dir is not None:
            values["report_dir"] = str(self.report_dir)
        return values


class RenderedPermissions(BaseModel):
    """A template with its placeholders filled for one scope: ready to become flags."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tools: tuple[str, ...] | None
    allowed_tools: tuple[str, ...]
    disallowed_tools: tuple[str, ...]
    permission_mode: PermissionMode
    max_turns: int | None
    add_dirs: tuple[str, ...]
    append_system_prompt: str | None
    mcp_config: dict[str, Any] | None


class PermissionTemplate(Block):
    """What an agent task run may do: tools, permission rules, folders, turns, MCP servers."""

    _block_type_name: ClassVar[str] = "Automates Permission Template"
    _block_type_slug: ClassVar[str] = "automates-permission-template"
    _description: ClassVar[str] = (
        "Permissions of an LLM CLI task run, rendered to the CLI's --allowedTools/"
        "--disallowedTools/--permission-mode/--add-dir flags (see docs/agents.md)."
    )

    description: str = Field(default="", description="What the template is for.")
    tools: list[str] | None = Field(
        default=None,
        description="The built-in tools the CLI loads at all (--tools); unset: its default set.",
    )
    allowed_tools: list[str] = Field(
        default_factory=list,
        description="Permission rules pre-approved (--allowedTools); may use {workdir}, "
        "{report_dir}. Under dontAsk everything else is denied.",
    )
    disallowed_tools: list[str] = Field(
        default_factory=list,
        description="Permission rules always denied (--disallowedTools); deny wins over allow.",
    )
    permission_mode: PermissionMode = Field(
        default="dontAsk", description="--permission-mode; dontAsk denies what no rule allows."
    )
    max_turns: int | None = Field(default=None, ge=1, description="Default --max-turns.")
    add_dirs: list[str] = Field(
        default_factory=list,
        description="Folders beyond the working tree the CLI may reach (--add-dir).",
    )
    append_system_prompt: str | None = Field(
        default=None, description="Appended to the CLI's system prompt (--append-system-prompt)."
    )
    mcp_servers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='MCP servers, as in an .mcp.json "mcpServers" object (--mcp-config, '
        "with --strict-mcp-config so no other MCP configuration is read). Each must connect, "
        "or the run stops before any model turn.",
    )
    layer_tools: bool = Field(
        default=False,
        description="Mount the layer's own tools for the run's agent: the MCP server "
        "'automates' (list, preview, create, change, pause, run its routines), with the rule "
        "mcp__automates allowing all of them (add mcp__automates__<tool> to disallowed_tools "
        "to withhold one).",
    )

    @field_validator("allowed_tools", "disallowed_tools", "add_dirs", "append_system_prompt")
    @classmethod
    def _known_placeholders(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value] if value else []
        for text in texts:
            unknown = set(_PLACEHOLDER.findall(text)) - PLACEHOLDERS
            if unknown:
                raise ValueError(
                    f"unknown placeholder(s) {sorted(unknown)} in {text!r}; "
                    f"known: {sorted(PLACEHOLDERS)}"
                )
        return value

    @model_validator(mode="after")
    def _layer_server_name_free(self) -> PermissionTemplate:
        if self.layer_tools and LAYER_SERVER in self.mcp_servers:
            raise ValueError(
                f"mcp_servers: {LAYER_SERVER!r} is the layer's own server, which "
                "layer_tools mounts; name this server otherwise"
            )
        return self

    def needs_report_dir(self) -> bool:
        texts = [*self.allowed_tools, *self.disallowed_tools, *self.add_dirs]
        texts.append(self.append_system_prompt or "")
        return any("{report_dir}" in text for text in texts)

    def render(
        self,
        scope: Scope,
        name: str = "template",
        *,
        layer_server: Mapping[str, Any] | None = None,
    ) -> RenderedPermissions:
        """Fill the placeholders for `scope`; an audit-like template needs a report folder, and
        one with `layer_tools` the layer server's entry for the run's agent."""
        if self.needs_report_dir() and scope.report_dir is None:
            raise TemplateError(
                f"permission template {name!r} confines writes to {{report_dir}}: "
                "the scope must give report_dir"
            )
        servers = dict(self.mcp_servers)
        allowed = list(self.allowed_tools)
        if self.layer_tools:
            if layer_server is None:
                raise TemplateError(
                    f"permission template {name!r} mounts the layer's tools: the run must give "
                    "the layer server's entry (its agent and settings)"
                )
            servers[LAYER_SERVER] = dict(layer_server)
            if LAYER_RULE not in allowed:
                allowed.append(LAYER_RULE)
        values = scope.values()

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)

        return RenderedPermissions(
            tools=tuple(self.tools) if self.tools is not None else None,
            allowed_tools=tuple(fill(rule) for rule in allowed),
            disallowed_tools=tuple(fill(rule) for rule in self.disallowed_tools),
            permission_mode=self.permission_mode,
            max_turns=self.max_turns,
            add_dirs=tuple(fill(folder) for folder in self.add_dirs),
            append_system_prompt=fill(self.append_system_prompt)
            if self.append_system_prompt
            else None,
            mcp_config={"mcpServers": servers} if servers else None,
        )


_READ_TOOLS = ["Read", "Grep", "Glob"]
_NO_SHELL_OR_WEB_WRITES = ["Bash", "NotebookEdit"]
_RESEARCH_TOOLS = [*_READ_TOOLS, "WebSearch", "WebFetch"]

BUILTIN_TEMPLATES: Mapping[str, PermissionTemplate] = MappingProxyType(
    {
        "research": PermissionTemplate(
            description="Read-only: read and search the working tree and the web; no edits, "
            "no shell.",
            tools=_RESEARCH_TOOLS,
            allowed_tools=_RESEARCH_TOOLS,
            disallowed_tools=["Edit", "Write", *_NO_SHELL_OR_WEB_WRITES],
            max_turns=30,
            append_system_prompt="You are running a read-only research task in {workdir}. "
            "You cannot edit files or run commands; report your findings in your answer.",
        ),
        "routines": PermissionTemplate(
            description="Read-only research, plus the layer's tools: the agent sees and "
            "changes its own routines (scheduled prompts); no edits, no shell.",
            tools=_RESEARCH_TOOLS,
            allowed_tools=_RESEARCH_TOOLS,  # and mcp__automates, which layer_tools adds
            disallowed_tools=["Edit", "Write", *_NO_SHELL_OR_WEB_WRITES],
            layer_tools=True,
            max_turns=30,
            append_system_prompt="You are running a read-only task in {workdir}: you cannot "
            "edit files or run commands. Your routines (prompts the layer runs for you on a "
            "schedule) are reached through the automates tools (mcp__automates__*): list, "
            "preview, create, update, pause, resume, run and delete them. A new or changed "
            "routine may wait for the operator's approval; say so in your answer.",
        ),
        "heartbeat": PermissionTemplate(
            description="An agent's heartbeat check-in (docs/agents.md, Heartbeats): read the "
            "working tree to go through the checklist; no edits, no shell, no web.",
            tools=_READ_TOOLS,
            allowed_tools=_READ_TOOLS,
            disallowed_tools=["Edit", "Write", "WebFetch", "WebSearch", *_NO_SHELL_OR_WEB_WRITES],
            max_turns=10,
            append_system_prompt="This is a heartbeat check-in in {workdir}: go through the "
            "checklist you are given, reading what you need. Reply HEARTBEAT_OK alone when "
            "nothing needs attention; otherwise say briefly what does.",
        ),
        "audit": PermissionTemplate(
            description="Read everything in the working tree; write only inside the report folder.",
            tools=[*_READ_TOOLS, "Edit", "Write"],
            # Edit rules govern every built-in tool that edits files, Write included.
            allowed_tools=[*_READ_TOOLS, "Edit(/{report_dir}/**)"],
            disallowed_tools=_NO_SHELL_OR_WEB_WRITES,
            add_dirs=["{report_dir}"],
            max_turns=40,
            append_system_prompt="You are running an audit of {workdir}. Write your report "
            "only inside {report_dir}; writes anywhere else are denied.",
        ),
        "code": PermissionTemplate(
            description="Edit inside the perimeter's working tree; Bash limited to the "
            "sandboxed commands listed.",
            tools=[*_READ_TOOLS, "Edit", "Write", "Bash"],
            allowed_tools=[
                *_READ_TOOLS,
                "Edit(/{workdir}/**)",
                "Bash(git status)",
                "Bash(git diff *)",
                "Bash(git log *)",
                "Bash(ls *)",
                "Bash(pytest *)",
                "Bash(python -m pytest *)",
            ],
            disallowed_tools=[
                "Bash(git push *)",
                "Bash(curl *)",
                "Bash(wget *)",
                "Bash(rm -rf *)",
                "Bash(sudo *)",
                "WebFetch",
                "WebSearch",
            ],
            max_turns=60,
            append_system_prompt="You are working on the code in {workdir}. Edit files only "
            "inside it; commands outside the allowed list are denied.",
        ),
    }
)


async def asave_builtin_templates(overwrite: bool = False) -> list[str]:
    """Save the built-in templates as block documents; return the names written."""
    written = []
    for name, template in BUILTIN_TEMPLATES.items():
        if not overwrite and await _exists(name):
            continue
        await template.model_copy().asave(name, overwrite=True)
        written.append(name)
    return written


def save_builtin_templates(overwrite: bool = False) -> None:
    """Save the built-in templates (an existing document is kept unless `overwrite`)."""
    # Prefect's sync paths, so this works whether or not an event loop runs in this thread.
    for name, template in BUILTIN_TEMPLATES.items():
        if not overwrite and name in _known_templates_sync():
            continue
        template.model_copy().save(name, overwrite=True, _sync=True)  # type: ignore[call-arg]


async def _exists(name: str) -> bool:
    try:
        await PermissionTemplate.aload(name)
    except ValueError:
        return False
    return True


async def aload_template(name: str) -> PermissionTemplate:
    try:
        return await PermissionTemplate.aload(name)
    except ValueError:
        raise _unknown(name, await known_templates()) from None


def load_template(name: str) -> PermissionTemplate:
    """The template saved under `name`; an unknown name lists the known ones."""
    try:
        loaded = PermissionTemplate.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError:
        raise _unknown(name, _known_templates_sync()) from None
    return cast(PermissionTemplate, loaded)


def _unknown(name: str, known: list[str]) -> UnknownTemplateError:
    return UnknownTemplateError(
        f"unknown permission template {name!r}; known templates: "
        f"{', '.join(known) if known else '(none saved: run `automates sync`)'}"
    )


async def known_templates() -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            documents = await client.read_block_documents_by_type(
                PermissionTemplate._block_type_slug, include_secrets=False
            )
        except ObjectNotFound:  # the block type itself was never registered
            return []
    return sorted(document.name for document in documents if document.name)


def _known_templates_sync() -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    with get_client(sync_client=True) as client:
        try:
            documents = client.read_block_documents_by_type(
                PermissionTemplate._block_type_slug, include_secrets=False
            )
        except ObjectNotFound:
            return []
        except PrefectHTTPStatusError as error:
            # The sync client does not translate a 404 (block type never registered).
            if error.response.status_code == 404:
                return []
            raise
    return sorted(document.name for document in documents if document.name)
