"""What a residential worker's credential may do through the gate, and nothing more.

Each rule is a method and a path pattern of the Prefect API. A rule may name the object its
path points at (a flow run or a deployment): the gate then reads that object upstream and
allows the call only when it belongs to the worker's pool. Everything not listed is refused,
so creating or updating deployments or blocks, other pools and variables are all out.

Two allowed calls have their bodies checked too (issue 12): a flow-run update may only touch
the fields Prefect's worker and engine send (never `job_variables`: what another residential
host would execute), and a log line may only be written for a run the pool's workers hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

UUID = r"[0-9a-fA-F-]{36}"

Owned = Literal["flow_run", "deployment"] | None
Checked = Literal["flow_run_update", "logs"] | None

# What Prefect 3.8.8 sends in PATCH /flow_runs/{id}: the engine its name, version and retry
# policy, the worker the process id. Parameters, tags and job variables are the server side's.
UPDATABLE_FLOW_RUN_FIELDS = frozenset(
    {"name", "flow_version", "empirical_policy", "infrastructure_pid"}
)

# A run is held by the pool's workers from the moment one takes it (Pending) until it ends;
# its last log lines are sent in batches, after its final state, hence the grace.
HELD_STATES = frozenset({"PENDING", "RUNNING", "CANCELLING"})
FINAL_LOG_GRACE = timedelta(seconds=120)
MAX_RUNS_PER_LOG_BATCH = 32


@dataclass(frozen=True)
class Rule:
    method: str
    pattern: str
    owned: Owned = None
    why: str = ""
    scoped: bool = False  # a filter body the gate narrows to the worker's pool
    checked: Checked = None  # a body the gate checks before forwarding

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
    Rule(
        "PATCH",
        r"/api/flow_runs/(?P<id>{uuid})",
        "flow_run",
        "naming its runs, their process id",
        checked="flow_run_update",
    ),
    Rule("POST", r"/api/flow_runs/(?P<id>{uuid})/set_state", "flow_run", "states of its runs"),
    Rule("PATCH", r"/api/flow_runs/(?P<id>{uuid})/labels", "flow_run", "labels of its runs"),
    Rule("GET", r"/api/deployments/(?P<id>{uuid})", "deployment", "reading its deployments"),
    Rule("GET", r"/api/flows/{uuid}", why="the flow of a run"),
    Rule("POST", r"/api/logs/", why="the log lines of runs it holds", checked="logs"),
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


def refused_update_fields(body: object) -> list[str]:
    """The fields of a flow-run update the worker may not change; all of them if not an object."""
    if not isinstance(body, dict):
        return ["<the body is not a JSON object>"]
    return sorted(set(body) - UPDATABLE_FLOW_RUN_FIELDS)


def log_run_ids(body: object) -> tuple[set[str], set[str]] | str:
    """The flow-run ids and task-run ids a log batch writes to; or why the batch is refused.
    Every line must name its flow run: Prefect's workers send no other lines to an open-source
    server (worker logs go to Prefect Cloud only)."""
    if not isinstance(body, list):
        return "a log batch must be a JSON list"
    flow_runs: set[str] = set()
    task_runs: set[str] = set()
    for line in body:
        flow_run = line.get("flow_run_id") if isinstance(line, dict) else None
        if not isinstance(flow_run, str) or not re.fullmatch(UUID, flow_run):
            return "every log line must name its flow run (flow_run_id)"
        flow_runs.add(flow_run.lower())
        task_run = line.get("task_run_id")
        if task_run is not None:
            if not isinstance(task_run, str) or not re.fullmatch(UUID, task_run):
                return "a log line's task_run_id must be a run id"
            task_runs.add(task_run.lower())
    if len(flow_runs) + len(task_runs) > MAX_RUNS_PER_LOG_BATCH:
        return f"a log batch may name at most {MAX_RUNS_PER_LOG_BATCH} runs"
    return flow_runs, task_runs


def why_not_held(run: dict[str, Any] | None, pool: str, now: datetime | None = None) -> str | None:
    """Why the pool's workers do not hold `run` (a flow run as the API returns it); None: held."""
    if run is None:
        return "no such flow run"
    if run.get("work_pool_name") != pool:
        return f"the run is not in pool {pool!r}"
    state = run.get("state") or {}
    state_type = state.get("type")
    if state_type in HELD_STATES:
        return None
    ended = _timestamp(state.get("timestamp"))
    final = state_type in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
    if final and ended is not None and (now or datetime.now(UTC)) - ended <= FINAL_LOG_GRACE:
        return None
    return f"no worker holds the run (it is {state.get('name') or state_type or 'without a state'})"


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
