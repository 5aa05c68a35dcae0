"""Reading the LLM CLI's `stream-json` output: one JSON event per line.

The shapes are those the real Claude Code CLI prints (tests/integration/test_claude_cli.py
checks them against it): a `system`/`init` event, `assistant` and `user` messages (tool uses
and their results), and one final `result` event carrying `total_cost_usd`, `usage`,
`modelUsage`, `terminal_reason`, `is_error` and the answer in `result`. The init event comes
once the CLI has tried its MCP servers, listing each with its status (`connected`, `failed`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from automates.agents.pricing import cost_usd

# The CLI's own --max-budget-usd stop ends with a result of this subtype.
BUDGET_SUBTYPE = "error_max_budget_usd"
# The status of an MCP server, in the init event, that the CLI can call.
MCP_CONNECTED = "connected"


def input_tokens_of(usage: dict[str, Any]) -> int:
    """All input tokens of a usage block: fresh, cache writes and cache reads."""
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    values = (usage.get(key) for key in keys)
    return sum(value for value in values if isinstance(value, int))


@dataclass
class StreamTally:
    """What the events seen so far say: session, running cost estimate, final result."""

    session_id: str | None = None
    model: str | None = None
    init_seen: bool = False
    # Each MCP server the init event listed, with its status, in its order.
    mcp_servers: tuple[tuple[str, str], ...] = ()
    result: dict[str, Any] | None = None
    events: int = 0
    unparsed_lines: int = 0
    tool_uses: int = 0
    # Usage per assistant message id: the CLI repeats a message once per content block.
    _message_costs: dict[str, float] = field(default_factory=dict)

    def feed(self, line: str) -> dict[str, Any] | None:
        """Take one stdout line; the event it holds, if it is one."""
        try:
            event = json.loads(line)
        except ValueError:
            self.unparsed_lines += 1
            return None
        if not isinstance(event, dict):
            self.unparsed_lines += 1
            return None
        self.events += 1
        self.session_id = event.get("session_id") or self.session_id
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            self.init_seen = True
            self.model = event.get("model") or self.model
            self.mcp_servers = _mcp_servers(event.get("mcp_servers"))
        elif kind == "assistant":
            self._count_message(event.get("message") or {})
        elif kind == "result":
            self.result = event
        return event

    def _count_message(self, message: dict[str, Any]) -> None:
        content = message.get("content") or []
        self.tool_uses += sum(
            1 for block in content if isinstance(block, dict) and block.get("type") == "tool_use"
        )
        usage = message.get("usage")
        if isinstance(usage, dict):
            model = message.get("model") or self.model or ""
            key = str(message.get("id") or len(self._message_costs))
            self._message_costs[key] = cost_usd(model, usage)

    @property
    def unconnected_mcp_servers(self) -> list[tuple[str, str]]:
        """The MCP servers the init event listed as anything but connected."""
        return [(name, status) for name, status in self.mcp_servers if status != MCP_CONNECTED]

    @property
    def running_cost_usd(self) -> float:
        """The CLI's own total once it has printed it, else the estimate from messages."""
        estimate = sum(self._message_costs.values())
        return max(estimate, self.final_cost_usd or 0.0)

    @property
    def final_cost_usd(self) -> float | None:
        if self.result is None:
            return None
        value = self.result.get("total_cost_usd")
        return float(value) if isinstance(value, int | float) else None

    @property
    def valid_result(self) -> bool:
        """A result event with the fields an outcome is made of."""
        return (
            self.result is not None
            and self.final_cost_usd is not None
            and isinstance(self.result.get("usage"), dict)
        )

    def tokens(self) -> tuple[int, int]:
        usage = (self.result or {}).get("usage")
        if not isinstance(usage, dict):
            return 0, 0
        output = usage.get("output_tokens")
        return input_tokens_of(usage), output if isinstance(output, int) else 0


def _mcp_servers(listed: Any) -> tuple[tuple[str, str], ...]:
    """(name, status) of each server of an init event's `mcp_servers`; a malformed entry is
    kept with the status `unreported`, so it never passes for connected."""
    if not isinstance(listed, list):
        return ()
    servers = []
    for entry in listed:
        entry = entry if isinstance(entry, dict) else {}
        name, status = entry.get("name"), entry.get("status")
        servers.append(
            (
                name if isinstance(name, str) else repr(name),
                status if isinstance(status, str) else "unreported",
            )
        )
    return tuple(servers)
