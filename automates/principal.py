"""Who asked for a run: its principal, recorded on every run.

A principal is `system` (a schedule, a trigger, the guard's own catch-up and deferred runs),
`operator:NAME` (the CLI, the UI, `prefect deployment run`), `agent:NAME` (an agent's MCP tool
or task run) or `webhook:CALLER`. Whoever creates a run tags it `principal:<principal>`; a run
without the tag is read from what Prefect knows of it: made by the scheduler or by an
automation, the system's; otherwise an operator's, named by Prefect when it knows who.
Shared types: nothing of ours is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable

TAG_PREFIX = "principal:"
SYSTEM = "system"
UNKNOWN_OPERATOR = "operator:unknown"


def tag(principal: str) -> str:
    """The Prefect tag that records `principal` on a run."""
    return f"{TAG_PREFIX}{principal}"


def operator(name: str) -> str:
    return f"operator:{name}"


def agent(name: str) -> str:
    return f"agent:{name}"


def webhook(caller: str) -> str:
    return f"webhook:{caller}"


def of_run(
    tags: Iterable[str],
    *,
    auto_scheduled: bool,
    created_by_type: str | None = None,
    created_by_name: str | None = None,
) -> str:
    """The principal of a run, from its tags and what Prefect recorded of its creation."""
    for name in tags:
        if name.startswith(TAG_PREFIX) and len(name) > len(TAG_PREFIX):
            return name[len(TAG_PREFIX) :]
    if auto_scheduled or (created_by_type or "").upper() == "AUTOMATION":
        return SYSTEM
    return operator(created_by_name) if created_by_name else UNKNOWN_OPERATOR
