"""Runs that ended, or stalled, outside the guard's hands: settled and journaled once.

The guard journals a run from its final-state hook, in the run's own process. That hook never
runs when the process is gone: a worker killed with its process group (the run is then marked
Crashed by Prefect's heartbeat automation, automates/server/unresponsive.py), a run whose
final state was written while the store could not be reached, a run refused by its worker
before any process started. And a run can stall before it starts: a worker proposed Pending
("Submitting") and then lost its database or died, and nothing ever moves the run again.

`settle` (run by the `run-watch` automate) finds both:

- a run of a managed deployment that is Pending for longer than the grace is re-submitted
  once (set Scheduled, so any worker of its pool takes it again); still not started one grace
  after that, it is Crashed with the reason. Never run twice: a Pending run has not started
  its body, and a process that was only slow to start finds, before its body, that the run
  now belongs to the process the re-submission started, and leaves (guard/submission.py).
- a run that reached a final state with no row in the execution journal gets one (outcome
  from its state, `journaled_by: run-watch` in its context), and is counted on its automate's
  breaker as the guard would have. The journal's unique flow-run id makes a late hook and the
  watch write one row between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from automates.guard import breaker
from automates.guard.orchestrator import PrefectOrchestrator
from automates.guard.recording import count_and_report, outcome_of, principal_of
from automates.registry.model import MANAGED_TAG
from automates.registry.policy import GuardPolicy
from automates.server.deployed import read_all
from automates.states import FAILURE, RetryOutcome
from automates.store.engine import transaction
from automates.store.journals import Crash, Execution, journaled_runs, record_execution

RESUBMITTED = "re-submitted by run-watch"
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@dataclass(frozen=True)
class Settled:
    """One run the watch acted on: what it did and why."""

    flow_run_id: UUID
    automate: str
    action: str  # resubmitted | crashed | journaled
    reason: str


async def settle(
    client: Any, engine: Engine, now: datetime, *, pending_grace: timedelta, lookback: timedelta
) -> list[Settled]:
    """Re-submit or end stalled runs, then journal unjournaled final ones (a Prefect client)."""
    deployments = {
        d.id: d for d in await read_all(client.read_deployments) if MANAGED_TAG in (d.tags or ())
    }
    settled = await _stalled(client, deployments, now, pending_grace)
    settled += await _unjournaled(client, engine, deployments, now, lookback)
    return settled


async def _runs(client: Any, types: list[str], **time_filter: Any) -> list[Any]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    return await read_all(
        client.read_flow_runs,
        flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[MANAGED_TAG]),
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType(t) for t in types])
            ),
            **time_filter,
        ),
    )


async def _stalled(
    client: Any, deployments: dict[Any, Any], now: datetime, grace: timedelta
) -> list[Settled]:
    from prefect.states import Crashed, Scheduled

    settled = []
    for run in await _runs(client, ["PENDING"]):
        deployment = deployments.get(run.deployment_id)
        since = run.state.timestamp if run.state is not None else None
        if deployment is None or since is None or now - since < grace:
            continue
        history = await client.read_flow_run_states(run.id)
        if any(state.message == RESUBMITTED for state in history):
            reason = (
                f"never started: Pending for {int((now - since).total_seconds())} s after it "
                "was re-submitted once (is a worker serving its pool?)"
            )
            await client.set_flow_run_state(run.id, Crashed(message=reason), force=True)
            settled.append(Settled(run.id, deployment.name, "crashed", reason))
        else:
            await client.set_flow_run_state(
                run.id, Scheduled(scheduled_time=now, message=RESUBMITTED), force=True
            )
            reason = f"Pending for {int((now - since).total_seconds())} s without starting"
            settled.append(Settled(run.id, deployment.name, "resubmitted", reason))
    return settled


async def _unjournaled(
    client: Any, engine: Engine, deployments: dict[Any, Any], now: datetime, lookback: timedelta
) -> list[Settled]:
    from prefect.client.schemas.filters import FlowRunFilterEndTime

    since = FlowRunFilterEndTime(after_=now - lookback)  # type: ignore[arg-type]
    ended = [
        run
        for run in await _runs(client, list(FINAL), end_time=since)
        if run.deployment_id in deployments and run.state is not None
    ]
    if not ended:
        return []
    with transaction(engine) as connection:
        journaled = journaled_runs(connection, [run.id for run in ended])
    settled = []
    for run in ended:
        if run.id in journaled:
            continue
        deployment = deployments[run.deployment_id]
        outcome = outcome_of(run.state)
        finished = run.end_time or run.state.timestamp or now
        started = min(run.start_time or run.expected_start_time or finished, finished)
        message = run.state.message or run.state.name
        row = Execution(
            automate=deployment.name,
            flow_run_id=run.id,
            started_at=started,
            finished_at=finished,
            duration_seconds=(finished - started).total_seconds(),
            outcome=outcome,
            message=message,
            attempts=1,
            context={"journaled_by": "run-watch", "state": run.state.name},
            principal=principal_of(run),
        )
        crash = Crash(
            automate=deployment.name,
            flow_run_id=run.id,
            attempt=1,
            error_class=run.state.name or "Crashed",
            message=message or "",
            traceback="",
            retry_outcome=RetryOutcome.NONE,
            breaker_state=None,  # known once the run is counted
        )
        crashes = [crash] if outcome in FAILURE else []
        with transaction(engine) as connection:
            if not record_execution(connection, row):
                continue  # the guard's hook wrote it meanwhile
            transition = count_and_report(connection, row, crashes, _policy(deployment))
        if transition is not None:
            breaker.apply(
                transition,
                run.deployment_id,
                schedules_active=not deployment.paused,
                orchestrator=PrefectOrchestrator(),
            )
        settled.append(Settled(run.id, deployment.name, "journaled", f"{outcome}: {message}"))
    return settled


def _policy(deployment: Any) -> GuardPolicy | None:
    env = (deployment.job_variables or {}).get("env") or {}
    try:
        return GuardPolicy.from_env(env)
    except ValueError:
        return None
