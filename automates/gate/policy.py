"""What a residential worker's credential may do through the gate, and nothing more.

Each rule is a method and a path pattern of the Prefect API. A rule may name the object its
path points at (a flow run or a deployment): the gate then reads that object upstream and
allows the call only when it belongs to the worker's pool. Everything not listed is refused,
so creating or updating deployments or blocks, other pools and variables are all out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

UUID = r"[0-9a-fA-F-]{36}"

Owned = Literal["flow_run", "deployment"] | None


@dataclass(frozen=True)
class Rule:
    method: str
    pattern: str
    owned: Owned = None
    why: str = ""
    scoped: bool = False  # a filter body the gate narrows to the worker's pool

    def matches(self, method: str, path: str, pool: str) -> re.Match[str] | None:
        if method != self.method:
            return None
        return re.fullmatch(self.pattern.format(pool=re.escape(pool), uuid=UUID), path)


RULES: tuple[Rule, ...] = (
    Rule("GET", r"/api/health", why="liveness"),
    Rule("GET", r"/api/admin/version", why="the client's version check"),
    Rule("GET", r"/api/csrf-token", why="the client's CSRF handshake"),
    Rule("GET", r"/api/work_pools/{pool}", why="the worker reads its pool"),
    Rule("POST", r"/api/work_pools/{pool}/workers/heartbeat", why="the worker's heartbeat"),
    Rule("POST", r"/api/work_pools/{pool}/workers/filter", why="the worker lists its peers"),
    Rule("POST", r"/api/work_pools/{pool}/get_scheduled_flow_runs", why="polling its pool"),
    Rule("POST", r"/api/work_pools/{pool}/queues/filter", why="the queues of its pool"),
    Rule("POST", r"/api/flow_runs/filter", why="cancellations to watch", scoped=True),
    Rule("GET", r"/api/flow_runs/(?P<id>{uuid})", "flow_run", "reading its runs"),
    Rule("PATCH", r"/api/flow_runs/(?P<id>{uuid})", "flow_run", "naming/labelling its runs"),
    Rule("POST", r"/api/flow_runs/(?P<id>{uuid})/set_state", "flow_run", "states of its runs"),
    Rule("PATCH", r"/api/flow_runs/(?P<id>{uuid})/labels", "flow_run", "labels of its runs"),
    Rule("GET", r"/api/deployments/(?P<id>{uuid})", "deployment", "reading its deployments"),
    Rule("GET", r"/api/flows/{uuid}", why="the flow of a run"),
    Rule("POST", r"/api/logs/", why="run and worker logs (at worst, pollution)"),
)


def allowed(method: str, path: str, pool: str) -> tuple[Rule, str | None] | None:
    """The rule allowing the call and the id of the object to check; None: refuse."""
    for rule in RULES:
        match = rule.matches(method.upper(), path, pool)
        if match:
            return rule, match.groupdict().get("id")
    return None


def scoped_to_pool(body: object, pool: str) -> dict[str, object]:
    """A flow-run filter narrowed to `pool`, whatever else it asked for."""
    narrowed = dict(body) if isinstance(body, dict) else {}
    narrowed["work_pools"] = {"operator": "and_", "name": {"any_": [pool]}}
    return narrowed
