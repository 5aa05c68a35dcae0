"""Runs the guard would end before their body, settled by their worker without a process.

The guard's first pre-checks (guard/runner.py, BEFORE_PROCESS: the environment, the quiet
window, a tick missed under the `skip` policy) answer from the run alone. After an outage, or
through a quiet window, most of the runs a worker fetches are ones they end: each used to get
a process of its own (a fork or a Python start, Prefect's engine, its API calls) only to end
Skipped, and the burst after an outage held up the runs that really had to start. A worker of
this layer asks those checks itself, in two places:

- **as it fetches** (`SettleFirstMixin`): of the runs whose time has come, those the checks
  end are taken out of the batch; the others are submitted first, as Prefect's loop submits
  them, and the ended ones are settled a few at a time once those have their process, each
  with one state change (Scheduled → Completed "Skipped" or "Deferred") and its journal row:
  none goes through Prefect's submission (its Pending state, its configuration, its labels).
  A fetch that found runs to settle also reads the newest due runs of the pool's queues that
  are open and unbounded (a paused queue, or a concurrency limit of a queue or of the pool,
  is Prefect's fetch's to apply): Prefect hands out the oldest first, a page at a time, and a
  run triggered now must not wait behind pages of late ones;
- **as it would start the process** of a run fetched ahead of its time (`settle`): once the
  tick has come, the same question, before the fork.

Either way the state goes through Prefect's orchestration rules (not forced), the run's log
says so, and the journals are written by the guard's own final-state hook (`Guard.record`), as
the run's process would have; the journal's context says `settled: before_process`. When the
policy cannot be read, a check raises, or Prefect refuses the state or cannot be reached, the
run takes the ordinary way and the guard in its process asks every pre-check again: asking
first never loses a run.

The worker's settings stand in for the run's: a run's process gets the worker's settings (all
but its credentials, automates/platform/run_env.py), and the checks and the journals read
none of those.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import anyio
import anyio.to_thread
from prefect.client.schemas.objects import FlowRun, State
from prefect.client.schemas.responses import SetStateStatus
from prefect.workers.process import ProcessJobConfiguration, ProcessWorkerResult

from automates.guard.context import RunContext
from automates.guard.runner import Guard
from automates.platform.admission import refusal
from automates.registry.policy import GuardPolicy
from automates.settings import Settings

# The journal context's mark of a run settled here.
SETTLED = "settled"
BEFORE_PROCESS = "before_process"
# Runs settled at once from one fetch: a few, so that the runs that really start, submitted
# first, find the API free.
SETTLING_AT_ONCE = 4
# How long settling waits for the fetch's runs that really start to have their process.
SUBMITTED_FIRST_SECONDS = 5.0
# How many of the newest due runs a fetch that found runs to settle also reads.
NEWEST_PAGE = 50


class SettledWithoutProcess(Exception):
    """What a worker reports to Prefect's loop for a run it settled: no process, no pid."""


@dataclass(frozen=True)
class Decided:
    """A run the guard's first pre-checks end, and the state they end it in."""

    guard: Guard
    run: RunContext
    state: State

    @property
    def flow_run(self) -> FlowRun:
        assert self.run.flow_run is not None
        return self.run.flow_run


def policy_of(env: Mapping[str, Any] | None) -> GuardPolicy | None:
    """The guard policy in a run's environment (or a deployment's `env` job variable); None
    when it has none or it cannot be read (the run's own guard then reports it)."""
    try:
        return GuardPolicy.from_env(env or {})
    except ValueError:
        return None


def decide(policy: GuardPolicy, flow_run: FlowRun, settings: Settings) -> Decided | None:
    """Ask the guard's BEFORE_PROCESS checks about `flow_run` (blocking: a deferral asks
    Prefect for its run); None when the run needs its process."""
    guard = Guard(policy, settings)
    run = guard.begin(flow_run)
    state = guard.decide_before_process(run)
    return None if state is None else Decided(guard, run, state)


async def settle(worker: Any, flow_run: FlowRun, env: Mapping[str, Any]) -> State | None:
    """The final state `worker` gave `flow_run` at the moment it would start its process, or
    None when the run needs its process (`env`: the environment the process would get)."""
    policy = policy_of(env)
    if policy is None:
        return None
    try:
        decided = await anyio.to_thread.run_sync(decide, policy, flow_run, Settings())
    except Exception:
        worker.get_flow_run_logger(flow_run).warning(
            "could not decide before its process; the process decides", exc_info=True
        )
        return None
    return None if decided is None else await conclude(worker, decided)


async def conclude(worker: Any, decided: Decided) -> State | None:
    """Propose the decided state to Prefect and journal it; the state Prefect accepted, or
    None when it did not (the run then takes the ordinary way)."""
    flow_run = decided.flow_run
    logger = worker.get_flow_run_logger(flow_run)
    try:
        result = await worker.client.set_flow_run_state(flow_run.id, decided.state)
    except Exception:  # the API failed us: the run takes the ordinary way
        logger.warning("could not settle the run before its process", exc_info=True)
        return None
    if result.status is not SetStateStatus.ACCEPT or result.state is None:
        # The run moved meanwhile (cancelled, taken by another worker): whoever moved it, or
        # its process, settles it.
        logger.info("not settled before its process: Prefect answered %s", result.status.value)
        return None
    final: State = result.state
    logger.info("%s (settled by worker %s, no process started)", final.message, worker.name)
    decided.run.journal.context[SETTLED] = BEFORE_PROCESS
    await anyio.to_thread.run_sync(decided.guard.record, flow_run, final)
    return final


class SettleFirstMixin:
    """Takes the runs the guard would end at once out of each fetch, submits the others
    first, and settles the ended ones a few at a time (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Runs Prefect would not let this worker settle: they take the ordinary way from now
        # on (else each fetch would decide them again, and they would never start).
        self._not_settled: set[UUID] = set()
        # Runs asked as they were fetched and found to need their process: not asked again
        # where the process would start (while they are being submitted); each with the
        # deployment it was asked with, which admission checks it against (no second read).
        self._asked: dict[UUID, Any] = {}

    def deployment_asked_with(self, flow_run_id: UUID) -> Any | None:
        """The deployment read as the run was fetched, if it was asked then."""
        return self._asked.get(flow_run_id)

    async def settle_before_start(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: Any,
    ) -> ProcessWorkerResult | None:
        """A run fetched ahead of its time that the guard would end before its body, settled
        once its tick has come, with no process; None when the run needs its process."""
        if self._asked.pop(flow_run.id, None) is not None:
            return None
        state = await settle(self, flow_run, configuration.env)
        if state is None:
            return None
        if task_status is not None:
            # Prefect's loop reads an exception as "no process": no pid to record or signal.
            task_status.started(SettledWithoutProcess(state.name))
        return ProcessWorkerResult(status_code=0, identifier="")

    async def _submit_scheduled_flow_runs(self, flow_run_response: list[Any]) -> list[FlowRun]:
        worker: Any = self
        entries = list(flow_run_response)
        self._asked = {  # the others reached their process
            run_id: deployment
            for run_id, deployment in self._asked.items()
            if run_id in worker._submitting_flow_run_ids
        }
        try:
            decided = await self._decide_due(self._new(entries))
            if decided:
                # A storm: Prefect hands a worker the oldest runs first, a page at a time, so
                # a run triggered just now can wait behind pages of late ones. The newest due
                # runs come in this pass too.
                newest = await self._newest_due({entry.flow_run.id for entry in entries})
                entries += newest
                decided |= await self._decide_due(self._new(newest))
        except Exception:  # the batch takes the ordinary way; each run's process decides
            worker._logger.warning("could not decide the fetched runs first", exc_info=True)
            decided = {}
        rest = [entry for entry in entries if entry.flow_run.id not in decided]
        submitted: list[FlowRun] = await super()._submit_scheduled_flow_runs(rest)  # type: ignore[misc]
        if decided:
            worker._submitting_flow_run_ids.update(decided)
            # Due runs that will really start are on their way first: settling waits for them.
            now = datetime.now(UTC)
            first = {
                run.id
                for run in submitted
                if run.expected_start_time is None or run.expected_start_time <= now
            }
            worker._runs_task_group.start_soon(self._settle_decided, list(decided.values()), first)
        return submitted

    def _new(self, entries: Sequence[Any]) -> list[FlowRun]:
        worker: Any = self
        return [e.flow_run for e in entries if e.flow_run.id not in worker._submitting_flow_run_ids]

    async def _newest_due(self, known: set[UUID]) -> list[Any]:
        """The pool's newest runs whose time has come, still Scheduled, not in `known`, as
        Prefect's fetch answers them; only from this worker's queues that are neither paused
        nor bounded, in a pool that is neither (Prefect's fetch applies those)."""
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterExpectedStartTime,
            FlowRunFilterState,
            FlowRunFilterStateType,
            WorkPoolFilter,
            WorkPoolFilterName,
            WorkQueueFilter,
            WorkQueueFilterName,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.responses import WorkerFlowRunResponse
        from prefect.client.schemas.sorting import FlowRunSort

        worker: Any = self
        if worker._work_pool is None:
            return []
        # Read afresh: the worker's copy of the pool is as old as its last heartbeat.
        pool = await worker.client.read_work_pool(worker._work_pool.name)
        if pool.is_paused or pool.concurrency_limit is not None:
            return []
        served = set(worker._work_queues or ())
        queues = sorted(
            queue.name
            for queue in await worker.client.read_work_queues(work_pool_name=pool.name)
            if not queue.is_paused
            and queue.concurrency_limit is None
            and (not served or queue.name in served)
        )
        if not queues:
            return []
        runs = await worker.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                expected_start_time=FlowRunFilterExpectedStartTime.model_validate(
                    {"before_": datetime.now(UTC)}
                ),
            ),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool.name])),
            work_queue_filter=WorkQueueFilter(name=WorkQueueFilterName(any_=queues)),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=NEWEST_PAGE,
        )
        return [
            WorkerFlowRunResponse(
                work_pool_id=pool.id, work_queue_id=run.work_queue_id, flow_run=run
            )
            for run in runs
            if run.id not in known and run.work_queue_id is not None
        ]

    async def _decide_due(self, fetched: Sequence[FlowRun]) -> dict[UUID, Decided]:
        """The fetched runs whose time has come that the guard's first pre-checks end, by
        id; each deployment read once; a run its worker would refuse is left to be refused."""
        worker: Any = self
        now = datetime.now(UTC)
        due = [
            flow_run
            for flow_run in fetched
            if flow_run.deployment_id is not None
            and flow_run.id not in self._not_settled
            and flow_run.expected_start_time is not None
            and flow_run.expected_start_time <= now
        ]
        if not due:
            return {}
        deployments: dict[UUID, Any] = {}
        for deployment_id in {flow_run.deployment_id for flow_run in due}:
            assert deployment_id is not None
            with contextlib.suppress(Exception):  # unreadable: those runs take the ordinary way
                deployments[deployment_id] = await worker.client.read_deployment(deployment_id)
        settings = Settings()

        def decide_all() -> dict[UUID, Decided | None]:
            answers: dict[UUID, Decided | None] = {}
            for flow_run in due:
                deployment = deployments.get(flow_run.deployment_id)  # type: ignore[arg-type]
                if deployment is None or refusal(deployment, flow_run) is not None:
                    continue
                policy = policy_of((deployment.job_variables or {}).get("env"))
                if policy is not None:
                    answers[flow_run.id] = decide(policy, flow_run, settings)
            return answers

        answers = await anyio.to_thread.run_sync(decide_all)
        self._asked.update(
            (flow_run.id, deployments[flow_run.deployment_id])  # type: ignore[index]
            for flow_run in due
            if flow_run.id in answers and answers[flow_run.id] is None
        )
        return {run_id: decided for run_id, decided in answers.items() if decided is not None}

    async def _settle_decided(self, decided: list[Decided], first: set[UUID]) -> None:
        """Settle `decided` once the runs in `first` have their process (or a few seconds
        passed), a few at a time."""
        worker: Any = self
        with anyio.move_on_after(SUBMITTED_FIRST_SECONDS):
            while first & worker._submitting_flow_run_ids:
                await anyio.sleep(0.05)
        limiter = anyio.CapacityLimiter(SETTLING_AT_ONCE)

        async def one(item: Decided) -> None:
            async with limiter:
                try:
                    if await conclude(worker, item) is None:
                        self._not_settled.add(item.flow_run.id)
                finally:
                    # Settled, or not: a run still Scheduled is fetched again, the ordinary way.
                    worker._submitting_flow_run_ids.discard(item.flow_run.id)

        async with anyio.create_task_group() as group:
            for item in decided:
                group.start_soon(one, item)
