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
from prefect.states import Completed, Scheduled

from automates.registry.policy import GuardPolicy
from automates.scheduling.concurrency import Concurrency
from automates.scheduling.misfire import Decision, Misfire, MissedTick, show, utc

TAGS = {Misfire.CATCH_UP: "misfire:catch-up", Misfire.FIRE_ONCE: "misfire:fire-once"}
POLL_SECONDS = 2.0


def missing_run_key(deployment_id: Any, tick: MissedTick) -> str:
    return f"misfire {deployment_id} {tick.schedule} {tick.at.isoformat()}"


def create_missing_runs(
    policy: GuardPolicy,
    deployment_id: Any,
    decision: Decision,
    taken: set[datetime],
    schedules: dict[str, Any],
) -> None:
    """A run for each kept tick that has none (`taken`: the ticks that have a run)."""
    missing = [t for t in decision.to_run if t.at not in taken]
    if not missing:
        return
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for tick in missing:
            schedule = schedules.get(tick.schedule)
            client.create_flow_run_from_deployment(
                deployment_id,
                parameters=dict(schedule.parameters) if schedule is not None else None,
                state=Scheduled(
                    scheduled_time=tick.at,
                    message=f"missed tick {show(tick.at)}, run by misfire policy "
                    f"{policy.misfire.value}",
                ),
                tags=[TAGS[policy.misfire]],
                idempotency_key=missing_run_key(deployment_id, tick),
            )


def wait_for_older(
    policy: GuardPolicy, deployment_id: Any, decision: Decision, mine: MissedTick
) -> State | None:
    """None once the runs of the kept ticks older than `mine` have ended; Skipped when they
    have not shortly before this run's timeout (a tenth of it early, 5 s at most, as the
    concurrency queue gives up)."""
    older = sorted({t.at for t in decision.to_run if t.at < mine.at})
    if not older or policy.concurrency is Concurrency.ALLOW:
        return None
    from prefect import get_client

    from automates.guard.runner import run_logger

    budget = policy.timeout_seconds - min(policy.timeout_seconds / 10, 5)
    deadline = time.monotonic() + budget
    run_logger().info(
        "tick %s waits for the catch-up of %d older tick(s) to end (oldest first)",
        show(mine.at),
        len(older),
    )
    with get_client(sync_client=True) as client:
        while True:
            ended = _ended_ticks(client, deployment_id, older[0], older[-1])
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


def _ended_ticks(client: Any, deployment_id: Any, first: datetime, last: datetime) -> set[datetime]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterExpectedStartTime,
    )

    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
            # Prefect's stubs name its own DateTime type; any aware datetime validates.
            expected_start_time=FlowRunFilterExpectedStartTime.model_validate(
                {"after_": first, "before_": last}
            ),
        ),
        limit=200,
    )
    return {
        utc(r.expected_start_time)
        for r in runs
        if r.expected_start_time and r.state is not None and r.state.is_final()
    }
