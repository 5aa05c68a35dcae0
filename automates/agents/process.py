"""Running the LLM CLI: spawned in its own process group, streamed live, bounded.

Every stdout line goes to `on_line` the moment it is read (the task run's log tails it while
the CLI works). The run is bounded twice: a wall-clock timeout and a dollar budget checked
against the cost seen in the events as they stream. Either bound kills the whole process group,
so tools the CLI started (a shell, an MCP server) die with it. Every MCP server is required:
the CLI's init event lists each with its status, and one not connected stops the run there,
before any model turn (in print mode the CLI would otherwise go on without it, silently).
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from automates.agents.stream import BUDGET_SUBTYPE, StreamTally
from automates.process_group import terminate_group

Status = Literal["completed", "failed", "timed_out", "over_budget"]
# After SIGTERM the CLI gets this long to flush and exit before the group is SIGKILLed.
TERMINATE_GRACE_SECONDS = 3.0
STDERR_TAIL_LINES = 40
_EOF = None


@dataclass(frozen=True)
class CliOutcome:
    """How a CLI run ended, with what the final result event said (zeros if none came)."""

    status: Status
    exit_code: int | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    terminal_reason: str | None
    result_text: str | None
    session_id: str | None
    pid: int | None
    error: str | None = None
    # Each MCP server the CLI's init event listed, with its status (`connected`, `failed`, ...).
    mcp_servers: tuple[tuple[str, str], ...] = ()


def run_cli(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_seconds: float,
    max_budget_usd: float | None,
    on_start: Callable[[int], None] | None,
    on_line: Callable[[str], None],
    on_init: Callable[[], None] | None = None,
) -> CliOutcome:
    """Run `argv` to its end, its timeout or its budget, or until its init event shows an MCP
    server not connected; never leaves its process group alive. `on_init` is called once the
    init event is read: the CLI has read its configuration and started its MCP servers."""
    deadline = time.monotonic() + timeout_seconds
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, killed as one
        )
    except OSError as error:
        return _outcome("failed", None, StreamTally(), None, f"cannot start {argv[0]}: {error}")
    assert process.stdout is not None and process.stderr is not None
    stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    lines: queue.Queue[str | None] = queue.Queue()
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, lines.put), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, _keeper(stderr_tail)), daemon=True),
    ]
    for reader in readers:
        reader.start()
    tally = StreamTally()
    stopped: Status | None = None
    try:
        if on_start is not None:
            on_start(process.pid)
        stopped = _follow(lines, tally, on_line, on_init, deadline, max_budget_usd)
        if stopped is None:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                stopped = "timed_out"
    finally:
        # Whatever happened (a bound, a callback raising, a normal end), nothing of the
        # group outlives the call.
        terminate_group(process, TERMINATE_GRACE_SECONDS)
        for reader in readers:
            reader.join(timeout=TERMINATE_GRACE_SECONDS)
    exit_code = process.returncode
    stderr_text = "\n".join(stderr_tail).strip() or None
    if stopped == "timed_out":
        message = f"timed out after {timeout_seconds:g} s"
        return _outcome(stopped, exit_code, tally, process.pid, message)
    if stopped == "over_budget":
        message = f"spent ${tally.running_cost_usd:.4f}, over the ${max_budget_usd:g} budget"
        return _outcome(stopped, exit_code, tally, process.pid, message)
    if stopped == "failed":
        return _outcome(stopped, exit_code, tally, process.pid, _unconnected(tally))
    return _ended(exit_code, tally, process.pid, stderr_text)


def _follow(
    lines: queue.Queue[str | None],
    tally: StreamTally,
    on_line: Callable[[str], None],
    on_init: Callable[[], None] | None,
    deadline: float,
    max_budget_usd: float | None,
) -> Status | None:
    """Hand each line over as it comes; the bound that stopped the run (`failed`: an MCP server
    not connected), or None at EOF."""
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            return "timed_out"
        if line is _EOF:
            return None
        init_seen = tally.init_seen
        tally.feed(line)
        first_init = tally.init_seen and not init_seen
        if first_init and on_init is not None:
            on_init()  # first: a slow on_line must not leave time for a turn before it
        on_line(line)
        if first_init and tally.unconnected_mcp_servers:
            return "failed"
        if max_budget_usd is not None and tally.running_cost_usd > max_budget_usd:
            return "over_budget"


def _unconnected(tally: StreamTally) -> str:
    servers = "; ".join(
        f"MCP server {name!r} is {status}, not connected"
        for name, status in tally.unconnected_mcp_servers
    )
    return f"{servers}; stopped before any model turn"


def _ended(exit_code: int | None, tally: StreamTally, pid: int, error: str | None) -> CliOutcome:
    if not tally.valid_result:
        reason = "no result event" if tally.result is None else "an invalid result event"
        return _outcome("failed", exit_code, tally, pid, f"the CLI ended with {reason}: {error}")
    result = tally.result or {}
    if result.get("subtype") == BUDGET_SUBTYPE:
        return _outcome("over_budget", exit_code, tally, pid, "the CLI stopped at its budget")
    if exit_code == 0 and not result.get("is_error"):
        return _outcome("completed", exit_code, tally, pid, None)
    detail = result.get("result") or error or f"exit code {exit_code}"
    return _outcome("failed", exit_code, tally, pid, str(detail))


def _outcome(
    status: Status, exit_code: int | None, tally: StreamTally, pid: int | None, error: str | None
) -> CliOutcome:
    result = tally.result or {}
    input_tokens, output_tokens = tally.tokens()
    text = result.get("result")
    reason = result.get("terminal_reason")
    return CliOutcome(
        status=status,
        exit_code=exit_code,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=tally.running_cost_usd,
        terminal_reason=reason if isinstance(reason, str) else None,
        result_text=text if isinstance(text, str) else None,
        session_id=tally.session_id,
        pid=pid,
        error=error,
        mcp_servers=tally.mcp_servers,
    )


def _pump(stream: IO[bytes], put: Callable[[str | None], None]) -> None:
    for raw in iter(stream.readline, b""):
        put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    stream.close()
    put(_EOF)


def _keeper(tail: deque[str]) -> Callable[[str | None], None]:
    def keep(line: str | None) -> None:
        if line is not _EOF:
            tail.append(line)

    return keep
