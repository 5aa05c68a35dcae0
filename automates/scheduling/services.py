"""Service automates (`kind: service`): the rules that keep exactly one loop running.

A service's command is a long-running loop (the reference's brainstorm worker). While the
automate is enabled, one *loop run* of its deployment runs it, restarting the command when it
exits; a run started with `once: true` is its one-shot catch-up mode instead. These rules are
pure: when to restart, and when restarting has become a crash loop that must stop.

- Restart delay: the declaration's `retry_backoff_seconds` after an exit, doubling with each
  quick exit in a row (one that came less than STABLE_SECONDS after its start), up to
  MAX_RESTART_DELAY_SECONDS. A command that ran STABLE_SECONDS was healthy: the delay starts
  over from `retry_backoff_seconds`.
- Crash loop: more than `AUTOMATES_CRASH_LOOP_RESTARTS` exits (of the command, or of earlier
  loop runs that crashed or failed) within `AUTOMATES_CRASH_LOOP_WINDOW_SECONDS`, the limits
  of the layer's own processes. The loop run then stops in the Cancelled state CRASH_LOOP,
  which nothing restarts until an operator runs `automates sync`. Failures before a loop run
  that was cancelled (a crash-loop stop, or the automate disabled) do not count: a fresh start
  starts with a fresh count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

STABLE_SECONDS = 60.0
MAX_RESTART_DELAY_SECONDS = 300.0
# The Cancelled state's name of a loop run stopped for crash-looping.
CRASH_LOOP = "CrashLoop"
# The parameter of the service flow that selects the one-shot mode.
ONCE = "once"


def is_loop_run(parameters: Mapping[str, Any] | None) -> bool:
    """Whether a run of a service's deployment is its loop (not its one-shot mode)."""
    return not (parameters or {}).get(ONCE)


def restart_delay(backoff_seconds: float, quick_exits: int) -> float:
    """Seconds to wait before restarting after `quick_exits` quick exits in a row (>= 1)."""
    exponent = max(quick_exits - 1, 0)
    if exponent > 16:  # far past the cap; keeps the power small
        return MAX_RESTART_DELAY_SECONDS
    return min(backoff_seconds * 2**exponent, MAX_RESTART_DELAY_SECONDS)


def crash_looping(exits: Iterable[datetime], now: datetime, restarts: int, window: float) -> bool:
    """More than `restarts` exits in the last `window` seconds."""
    since = now - timedelta(seconds=window)
    return sum(1 for moment in exits if moment >= since) > restarts


def earlier_failures(runs: Iterable[tuple[str | None, datetime | None]]) -> list[datetime]:
    """When the earlier loop runs ended Crashed or Failed, newest first, up to the last
    cancelled one (a stop, after which the count starts over). `runs`: (state type, end
    time) of the service's finished loop runs, newest first."""
    failures = []
    for state_type, ended in runs:
        if state_type == "CANCELLED":
            break
        if state_type in ("CRASHED", "FAILED") and ended is not None:
            failures.append(ended)
    return failures
