"""The agent dispatcher: a Prefect worker that runs agent task runs inside its own process.

Prefect's process worker starts a fresh Python for every flow run, which imports Prefect and
the flow before anything happens: about 8 s from request to work on this machine
(docs/benchmarks.md). An agent task run does almost nothing in Python — it waits on the LLM
CLI — so the dispatcher keeps Prefect, the flow and the store connection warm, polls its pool
often, and runs each flow run with Prefect's own engine (`run_flow`) in a thread, under the
same guard as every other deployment. Prefect still owns the run: states, logs, retries of the
guard, the UI's view and `prefect deployment run` are unchanged (docs/decisions, "agent
dispatcher").

Cancellation: the flow itself watches its run's state and terminates the CLI's process group
when an operator cancels (flows/agent_task_run.py), so the dispatcher never kills a thread.
"""

from __future__ import annotations

import os
import threading
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import anyio.abc
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import InfrastructureNotAvailable
from prefect.flow_engine import run_flow
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.workers.base import (
    BaseJobConfiguration,
    BaseVariables,
    BaseWorker,
    BaseWorkerResult,
)

from automates.guard.policy import GuardPolicy
from automates.guard.runner import guarded
from automates.server.spec import SET_WORKING_DIRECTORY
from automates.settings import Settings

# Agent task runs of one dispatcher running at once (threads waiting on CLI processes).
DEFAULT_SLOTS = 8


class AgentDispatcherResult(BaseWorkerResult):
    """The outcome of one flow run the dispatcher ran in-process."""


class AgentDispatcher(BaseWorker[BaseJobConfiguration, BaseVariables, AgentDispatcherResult]):
    type = "automates-agents"
    job_configuration = BaseJobConfiguration
    job_configuration_variables = BaseVariables
    _description = (
        "Runs agent task runs inside the worker process with Prefect's engine: no interpreter "
        "start-up between a request and the LLM CLI."
    )
    _display_name = "Automates agent dispatcher"

    def __init__(self, *args: Any, settings: Settings | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("limit", DEFAULT_SLOTS)
        super().__init__(*args, **kwargs)
        self._settings = settings or Settings()
        self._flows: dict[str, Flow[..., Any]] = {}
        self._flows_lock = threading.Lock()
        self._entrypoints: dict[UUID, str] = {}

    async def run(
        self,
        flow_run: FlowRun,
        configuration: BaseJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> AgentDispatcherResult:
        if task_status is not None:
            task_status.started(os.getpid())
        entrypoint = await self._entrypoint(flow_run)
        policy = GuardPolicy.from_env({k: v for k, v in configuration.env.items() if v})
        state = await anyio.to_thread.run_sync(
            partial(self._run_in_thread, flow_run, entrypoint, policy)
        )
        return AgentDispatcherResult(
            identifier=str(flow_run.id), status_code=0 if state.is_completed() else 1
        )

    def _run_in_thread(self, flow_run: FlowRun, entrypoint: str, policy: GuardPolicy | None) -> Any:
        flow = self._flow(entrypoint)
        if policy is not None:
            flow = guarded(flow, policy, self._settings)
        return run_flow(flow, flow_run=flow_run, return_type="state")

    async def _entrypoint(self, flow_run: FlowRun) -> str:
        if flow_run.deployment_id is None:
            raise ValueError(f"flow run {flow_run.id} has no deployment: nothing to load")
        # Read once per deployment and dispatcher: a changed entrypoint (a new sync) takes a
        # restart of the dispatcher, as a changed flow's code does.
        known = self._entrypoints.get(flow_run.deployment_id)
        if known is not None:
            return known
        deployment = await self.client.read_deployment(flow_run.deployment_id)
        if not deployment.entrypoint:
            raise ValueError(f"deployment {deployment.name!r} has no entrypoint")
        path, _, name = deployment.entrypoint.partition(":")
        entrypoint = f"{(self._root(deployment.pull_steps) / path).resolve()}:{name}"
        self._entrypoints[flow_run.deployment_id] = entrypoint
        return entrypoint

    def _root(self, pull_steps: list[dict[str, Any]] | None) -> Path:
        """The folder the deployment's pull step would move a fresh process into."""
        for step in pull_steps or []:
            directory = step.get(SET_WORKING_DIRECTORY, {}).get("directory")
            if directory:
                return Path(directory)
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
        # The run shares this process: it stops itself when its state turns Cancelling.
        raise InfrastructureNotAvailable(
            "agent task runs run inside the dispatcher; the run cancels its own CLI"
        )
