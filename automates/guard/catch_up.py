"""Running the missed ticks a misfire decision keeps (automates/guard/misfire.py).

- A kept tick that never became a run (Prefect's scheduler only creates runs forward from now)
  gets one, at its tick, tagged `misfire:catch-up` or `misfire:fire-once` so the misfire check
  lets it through and the UI shows why it exists. Its idempotency key names the deployment,
  the schedule and the tick: every late run of the outage asks for it, Prefect creates it once.
- Oldest first: under a one-at-a-time concurrency policy (forbid, queue_one, replace) the kept
  runs of a catch-up start together when the worker comes back, and would skip, queue or
  cancel each other. So each waits, before taking its concurrency slot, until the runs of the
  older kept ticks have ended. Under `allow` they overlap, as declared.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from prefect.client.schemas.objects import State
from prefect.states import Completed

from automates import principal
from automates.guard.context import RunContext
from automates.guard.orchestrator import NewRun
from automates.scheduling.concurrency import Concurrency, wait_budget
from automates.scheduling.misfire import Decision, Misfire, MissedTick, show, utc

TAGS = {Misfire.CATCH_UP: "misfire:catch-up", Misfire.FIRE_ONCE: "misfire:fire-once"}
POLL_SECONDS = 2.0


def missing_run_key(deployment_id: Any, tick: MissedTick) -> str:
    return f"misfire {deployment_id} {tick.schedule} {tick.at.isoformat()}"


def create_missing_runs(
    run: RunContext, decision: Decision, taken: set[datetime], schedules: dict[str, Any]
) -> None:
    """A run for each kept tick that has none (`taken`: the ticks that have a run)."""
    deployment_id = run.deployment_id
    assert deployment_id is not None
    for tick in (t for t in decision.to_run if t.at not in taken):
        schedule = schedules.get(tick.schedule)
        run.orchestrator.create_run(
            NewRun(
                deployment_id,
                scheduled_time=tick.at,
                idempotency_key=missing_run_key(deployment_id, tick),
                tags=(TAGS[run.policy.misfire], principal.tag(principal.SYSTEM)),
                parameters=schedule.parameters if schedule is not None else None,
                message=f"missed tick {show(tick.at)}, run by misfire policy "
                f"{run.policy.misfire.value}",
            )
        )


def wait_for_older(run: RunContext, decision: Decision, mine: MissedTick) -> State | None:
    """None once the runs of the kept ticks older than `mine` have ended; Skipped when they
    have not shortly before this run's timeout (a tenth of it early, 5 s at most, as the
    concurrency queue gives up)."""
    policy = run.policy
    older = sorted({t.at for t in decision.to_run if t.at < mine.at})
    if not older or policy.concurrency is Concurrency.ALLOW:
        return None
    assert run.deployment_id is not None
    budget = wait_budget(policy.timeout_seconds, elapsed=0.0)
    deadline = time.monotonic() + budget
    run.logger.info(
        "tick %s waits for the catch-up of %d older tick(s) to end (oldest first)",
        show(mine.at),
        len(older),
    )
    while True:
        ended = {
            utc(r.expected_start_time)
            for r in run.orchestrator.runs_due_between(run.deployment_id, older[0], older[-1])
            if r.expected_start_time and r.state is not None and r.state.is_final()
        }
        if all(at in ended for at in older):
            return None
        if time.monotonic() > deadline:
            return Completed(
                name="Skipped",
                message=f"skipped: missed tick {show(mine.at)} (misfire policy catch_up: "
                f"the catch-up of the older ticks was not over after {budget:.0f} s, as "
                "long as this run's timeout allows)",
            )
        time.sleep(POLL_SECONDS)
