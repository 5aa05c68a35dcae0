"""A Prefect worker that runs its pool's flow runs inside its own, already warm, process.

Prefect's process worker starts a fresh Python for every flow run, which imports Prefect and
the flow before the flow body runs: 1.2 CPU-seconds or more on a small machine, paid at the
run's scheduled time. An in-process worker pays it once: it keeps Prefect, the flows and the
store connection loaded, fetches runs ahead of their scheduled time (Prefect's prefetch),
proposes Pending early, waits in the event loop until just before the scheduled time, and
then runs the flow with Prefect's own engine (`run_flow`) in a thread, under the same guard as
every other deployment; the guard holds the body until the tick itself. Prefect still owns the
run: states, logs, the UI's view and `prefect deployment run` are unchanged.

Two worker types use it: the agent dispatcher (automates/platform/agent_dispatch.py) and the warm
worker (`WarmWorker`, pool `warm`), for short automates that must fire on the second
(docs/decisions/0022-warm-worker.md).

What a shared process cannot give: a run that calls `os.chdir`, changes process-wide
environment variables, or leaks memory affects its neighbours; `env_files` (which set
variables for the whole process) are refused here; a running flow cannot be killed (its
timeout still ends it: Prefect's timeout interrupts the flow's thread).
"""

from __future__ import annotations

import os
import threading
from functools import partial
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import anyio
import anyio.abc
from prefect.client.schemas.objects import FlowRun, State
from prefect.exceptions import InfrastructureNotAvailable
from prefect.flow_engine import run_flow
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.states import Failed
from prefect.workers.base import (
    BaseJobConfiguration,
    BaseVariables,
    BaseWorker,
    BaseWorkerResult,
)

from automates.guard.heartbeats import without_prefect_heartbeats
from automates.guard.runner import guarded
from automates.platform.process_worker import AdmissionMixin, CodeUpdateMixin
from automates.platform.ticks import ENGINE_LEAD_SECONDS, PREFETCH_SECONDS, sleep_until
from automates.registry.policy import GuardPolicy
from automates.server.pools import WARM_POOL_TYPE
from automates.server.spec import SET_WORKING_DIRECTORY
from automates.settings import Settings


class InProcessResult(BaseWorkerResult):
    """The outcome of one flow run an in-process worker ran."""


class InProcessWorker(
    CodeUpdateMixin,
    AdmissionMixin,
    BaseWorker[BaseJobConfiguration, BaseVariables, InProcessResult],
):
    """Runs each flow run of its pool in this process, at its scheduled time; only runs that
    pass admission (automates/platform/admission.py), as the process worker does; from its
    own checkout, which it may keep up to date between runs (`CodeUpdateMixin`)."""

    # Prefect registers every worker class under its type; pools use the subclasses' types.
    type = "automates-inprocess"
    job_configuration = BaseJobConfiguration
    job_configuration_variables = BaseVariables
    default_slots: ClassVar[int] = 8

    def __init__(self, *args: Any, settings: Settings | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("limit", self.default_slots)
        kwargs.setdefault("prefetch_seconds", PREFETCH_SECONDS)
        super().__init__(*args, **kwargs)
        self._settings = settings or Settings()
        self._flows: dict[str, Flow[..., Any]] = {}
        self._flows_lock = threading.Lock()
        self._entrypoints: dict[UUID, str] = {}
        # anyio's default thread limiter has 40 tokens; a run sleeping until its time holds
        # no thread, a running one holds one, and no more run at once than the worker's slots.
        self._threads = anyio.CapacityLimiter(kwargs["limit"] or self.default_slots)

    async def run(
        self,
        flow_run: FlowRun,
        configuration: BaseJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> InProcessResult:
        if task_status is not None:
            task_status.started(os.getpid())
        policy = GuardPolicy.from_env({k: v for k, v in configuration.env.items() if v})
        entrypoint = await self._entrypoint(flow_run)
        await sleep_until(flow_run.expected_start_time, lead=ENGINE_LEAD_SECONDS)
        refusal = _refusal(policy)
        if refusal is not None:
            # Pending to Failed: a transition Prefect's orchestration rules allow a worker.
            await self.client.set_flow_run_state(flow_run.id, refusal)
            return InProcessResult(identifier=str(flow_run.id), status_code=1)
        state = await anyio.to_thread.run_sync(
            partial(self._run_in_thread, flow_run, entrypoint, policy), limiter=self._threads
        )
        return InProcessResult(
            identifier=str(flow_run.id), status_code=0 if state.is_completed() else 1
        )

    def _run_in_thread(self, flow_run: FlowRun, entrypoint: str, policy: GuardPolicy | None) -> Any:
        flow = self._flow(entrypoint)
        if policy is None:
            return run_flow(flow, flow_run=flow_run, return_type="state")
        with without_prefect_heartbeats():  # the guard sends the run's own
            return run_flow(
                guarded(flow, policy, self._settings), flow_run=flow_run, return_type="state"
            )

    async def _entrypoint(self, flow_run: FlowRun) -> str:
        if flow_run.deployment_id is None:
            raise ValueError(f"flow run {flow_run.id} has no deployment: nothing to load")
        # Read once per deployment and worker: a changed entrypoint (a new sync) takes a
        # restart of the worker, as a changed flow's code does.
        known = self._entrypoints.get(flow_run.deployment_id)
        if known is not None:
            return known
        deployment = await self.client.read_deployment(flow_run.deployment_id)
        if not deployment.entrypoint:
            raise ValueError(f"deployment {deployment.name!r} has no entrypoint")
        path, _, name = deployment.entrypoint.partition(":")
        if path.endswith(".py"):  # a file of the checkout, not a module (a script automate)
            path = str((self._root(deployment.pull_steps) / path).resolve())
        entrypoint = f"{path}:{name}"
        self._entrypoints[flow_run.deployment_id] = entrypoint
        return entrypoint

    def _root(self, pull_steps: list[dict[str, Any]] | None) -> Path:
        """The folder the deployment's pull step would move a fresh process into: this
        worker's checkout for sync's relative step (a deployment synced before it named its
        syncing host's checkout, absolute, which still counts)."""
        for step in pull_steps or []:
            directory = step.get(SET_WORKING_DIRECTORY, {}).get("directory")
            if directory:
                return self._settings.project_root / directory
        return self._settings.project_root

    def _flow(self, entrypoint: str) -> Flow[..., Any]:
        # Loaded once per entrypoint: the import is what a fresh process would pay every time.
        with self._flows_lock:
            flow = self._flows.get(entrypoint)
            if flow is None:
                flow = load_flow_from_entrypoint(entrypoint)
                self._flows[entrypoint] = flow
            return flow

    async def kill_infrastructure(
        self,
        infrastructure_pid: str,
        configuration: BaseJobConfiguration,
        grace_seconds: int = 30,
    ) -> None:
        # The run shares this process: killing it would kill every neighbour.
        raise InfrastructureNotAvailable(
            f"{self.type} runs flows inside the worker process; a running flow ends itself "
            "(its timeout, or its own watch on its state)"
        )


class WarmWorker(InProcessWorker):
    """The warm pool's worker: short automates that must start on their second."""

    type = WARM_POOL_TYPE
    default_slots = 64
    _description = (
        "Runs short automates inside the worker process with Prefect's engine, fetched ahead "
        "and started at their scheduled time: no interpreter start-up on the tick."
    )
    _display_name = "Automates warm worker"


def _refusal(policy: GuardPolicy | None) -> State | None:
    if policy is not None and policy.env_files:
        return Failed(
            message=f"{policy.automate} declares env_files, which set variables for the whole "
            "process: it cannot run on an in-process worker; give it a process pool"
        )
    return None
