"""The MCP server of one agent's tools, every call journaled.

The server speaks for the agent it was started for (`python -m automates.mcp --agent NAME`,
mounted into that agent's task runs by its permission template): each tool is a thin call into
`RoutineTools`, which checks the agent's scope and the declaration rules. Every call — answered,
refused or failed, unknown tools and malformed arguments included — is written to the store's
tool-call journal with its arguments (secrets redacted, long text cut) and its outcome.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, ValidationError
from sqlalchemy import Engine

from automates.errors import AutomatesError, RoutineError
from automates.mcp.journal import journaled_arguments
from automates.registry.routine import RoutineSpec
from automates.routines.tools import MAX_PREVIEW, MAX_RUNS, RoutineTools
from automates.states import ToolCallOutcome
from automates.store.engine import transaction
from automates.store.routines import journal_tool_call

# The arguments of one call, as JSON, at most: a routine's spec is a few KiB at most.
MAX_ARGUMENT_BYTES = 64 * 1024
MAX_DETAIL_CHARS = 1000
SERVER_NAME = "automates"

RoutineName = Annotated[str, Field(min_length=1, max_length=63)]
PreviewCount = Annotated[int, Field(ge=1, le=MAX_PREVIEW)]
RunsLimit = Annotated[int, Field(ge=1, le=MAX_RUNS)]
RoutineChanges = Annotated[
    dict[str, Any],
    Field(
        description="Fields of the routine to change (description, schedule, prompt, template, "
        "perimeter, timeout_seconds, quiet_hours, delivery, enabled); the others keep their value."
    ),
]

INSTRUCTIONS = (
    "Tools of the automates scheduling layer for one agent: see your routines (scheduled "
    "prompts run as your task runs), preview their fire times and runs, create, change, pause, "
    "resume, run and delete your own. A routine you create waits for the operator's approval "
    "unless the operator trusts you; schedules firing more often than the minimum interval are "
    "refused. You can read, never change, the operator's automates that list you."
)


class LayerToolServer(MCPServer[Any]):
    """An MCPServer whose every tool call is checked for size and journaled."""

    def __init__(self, tools: RoutineTools, engine: Engine) -> None:
        super().__init__(name=SERVER_NAME, instructions=INSTRUCTIONS)
        self.tools = tools
        self.engine = engine
        _register(self, tools)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        size = len(json.dumps(arguments, default=str))
        if size > MAX_ARGUMENT_BYTES:
            message = f"arguments of {size} bytes; at most {MAX_ARGUMENT_BYTES} are accepted"
            self._journal(name, {"keys": sorted(arguments)}, ToolCallOutcome.REFUSED, message)
            raise ToolError(f"refused: {message}; nothing was changed")
        try:
            result = await super().call_tool(name, arguments, context)
        except ToolError as error:
            refused = _refusal(error) or self._tool_manager.get_tool(name) is None
            outcome = ToolCallOutcome.REFUSED if refused else ToolCallOutcome.FAILED
            self._journal(name, arguments, outcome, str(error))
            raise
        self._journal(name, arguments, ToolCallOutcome.OK, None)
        return result

    def _journal(
        self, tool: str, arguments: dict[str, Any], outcome: ToolCallOutcome, detail: str | None
    ) -> None:
        with transaction(self.engine) as connection:
            journal_tool_call(
                connection,
                self.tools.agent,
                tool[:100],
                journaled_arguments(arguments),
                outcome,
                None if detail is None else detail[:MAX_DETAIL_CHARS],
            )


def _refusal(error: BaseException) -> bool:
    """Whether a tool error is a refusal (the layer's rules, or arguments that failed their
    schema) rather than a failure: the SDK wraps what a tool raises, so the causes are read."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, RoutineError | ValidationError):
            return True
        cause = cause.__cause__
    return False


def _answer(call: Callable[[], Any]) -> Any:
    """A tool's answer; the layer's refusals and failures as the tool error the agent reads."""
    try:
        return call()
    except AutomatesError as error:
        raise ToolError(str(error)) from error


async def _answer_async(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except AutomatesError as error:
        raise ToolError(str(error)) from error


def _register(server: MCPServer[Any], tools: RoutineTools) -> None:
    """The tools, each a thin call into `tools` (descriptions are what the model reads)."""

    @server.tool()
    def list_routines() -> dict[str, Any]:
        """Your routines, then those you may only read (the operator's automates that list
        you, routines of agents you were granted): schedule, enabled, active, approval."""
        return _answer(tools.list_routines)

    @server.tool()
    def show_routine(name: RoutineName) -> dict[str, Any]:
        """One routine: its schedules, state and, if it is yours, the spec you gave."""
        return _answer(lambda: tools.show_routine(name))

    @server.tool()
    async def preview_routine(name: RoutineName, count: PreviewCount = 5) -> dict[str, Any]:
        """The routine's next fire times (UTC and local), quiet hours applied."""
        return await _answer_async(lambda: tools.preview_routine(name, count))

    @server.tool()
    def routine_runs(name: RoutineName, limit: RunsLimit = 10) -> dict[str, Any]:
        """The routine's latest runs and how each ended (completed, skipped, failed, ...)."""
        return _answer(lambda: tools.routine_runs(name, limit))

    @server.tool()
    def waiting_for_operator() -> dict[str, Any]:
        """Your visible routines waiting for the operator: approvals, holds for review."""
        return _answer(tools.waiting)

    @server.tool()
    def heartbeat_status() -> dict[str, Any]:
        """Your heartbeat (a periodic check-in the operator configures): its checklist source,
        interval, active hours and latest check-ins."""
        return _answer(tools.heartbeat_status)

    @server.tool()
    async def create_routine(routine: RoutineSpec) -> dict[str, Any]:
        """Create a routine of yours: a name, a description, one schedule (cron, every, at or
        when, with a timezone) and a prompt. It waits for the operator's approval unless you
        are trusted; it may not fire more often than the minimum interval."""
        return await _answer_async(lambda: tools.create_routine(routine))

    @server.tool()
    async def update_routine(
        name: RoutineName,
        changes: RoutineChanges,
    ) -> dict[str, Any]:
        """Change a routine of yours. A changed routine waits for approval again unless you
        are trusted."""
        return await _answer_async(lambda: tools.update_routine(name, changes))

    @server.tool()
    async def pause_routine(name: RoutineName) -> dict[str, Any]:
        """Pause a routine of yours: its schedules stop until you resume it."""
        return await _answer_async(lambda: tools.pause_routine(name))

    @server.tool()
    async def resume_routine(name: RoutineName) -> dict[str, Any]:
        """Resume a paused routine of yours."""
        return await _answer_async(lambda: tools.resume_routine(name))

    @server.tool()
    async def run_routine(name: RoutineName) -> dict[str, Any]:
        """Run a routine of yours once now, through the same rules as a scheduled run."""
        return await _answer_async(lambda: tools.run_routine(name))

    @server.tool()
    async def delete_routine(name: RoutineName) -> dict[str, Any]:
        """Delete a routine of yours and its deployment."""
        return await _answer_async(lambda: tools.delete_routine(name))
