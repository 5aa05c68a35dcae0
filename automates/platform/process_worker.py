"""The layer's process worker: Prefect's, admitting only declared runs, with a clean environment.

It is Prefect's `ProcessWorker` (same pool type `process`, same base job template, a fresh
process per run) with two differences, both decided before a run's process exists:

- each run passes `automates.platform.admission` first; a refused one ends `Failed` with the
  reason and nothing starts;
- a run's process gets `run_environment` of the worker's environment (no operator secrets),
  not the whole of it.
"""

from __future__ import annotations

import os
from typing import Any

import anyio.abc
from prefect.client.schemas.objects import FlowRun
from prefect.workers.base import BaseWorker, BaseWorkerResult
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

from automates.platform.admission import REFUSED, refusal
from automates.platform.run_env import passed_on


class RunRefused(RuntimeError):
    """A flow run this layer's workers will not start (the reason is the message)."""


class AdmissionMixin:
    """Checks each flow run against `admission.refusal` before a worker submits it."""

    async def _submit_run_and_capture_errors(
        self, flow_run: FlowRun, task_status: anyio.abc.TaskStatus[Any] | None = None
    ) -> BaseWorkerResult | Exception:
        worker: BaseWorker[Any, Any, Any] = self  # type: ignore[assignment]
        reason = await _refusal_of(worker, flow_run)
        if reason is None:
            return await super()._submit_run_and_capture_errors(  # type: ignore[misc]
                flow_run, task_status
            )
        await _refuse(worker, flow_run, reason)
        worker._release_limit_slot(flow_run.id)
        refused = RunRefused(reason)
        if task_status is not None:
            task_status.started(refused)
        return refused


async def _refusal_of(worker: BaseWorker[Any, Any, Any], flow_run: FlowRun) -> str | None:
    from prefect.exceptions import ObjectNotFound

    deployment = None
    if flow_run.deployment_id is not None:
        try:
            deployment = await worker.client.read_deployment(flow_run.deployment_id)
        except ObjectNotFound:
            return f"deployment {flow_run.deployment_id} no longer exists"
    return refusal(deployment, flow_run)


async def _refuse(worker: BaseWorker[Any, Any, Any], flow_run: FlowRun, reason: str) -> None:
    from prefect.events import emit_event
    from prefect.states import Failed

    logger = worker.get_flow_run_logger(flow_run)
    logger.error("refused: %s", reason)
    await worker.client.set_flow_run_state(
        flow_run.id, Failed(name=REFUSED, message=f"refused by the worker: {reason}")
    )
    try:
        emit_event(
            event="automates.run.refused",
            resource={
                "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                "prefect.resource.name": flow_run.name,
            },
            payload={"reason": reason, "worker": worker.name},
        )
    except Exception:  # the state already says why; an event that cannot leave is not fatal
        logger.warning("could not emit automates.run.refused", exc_info=True)


class CleanJobConfiguration(ProcessJobConfiguration):
    """Prefect's process job configuration, minus the worker's variables a run must not see."""

    def prepare_for_flow_run(self, flow_run: Any, *args: Any, **kwargs: Any) -> None:
        own = dict(self.env)  # the deployment's and the pool's variables
        super().prepare_for_flow_run(flow_run, *args, **kwargs)
        # Prefect merged the worker's whole environment in; keep of it what may pass.
        self.env = {
            name: value
            for name, value in self.env.items()
            if name in own or os.environ.get(name) != value or passed_on(name)
        }


class GuardedProcessWorker(AdmissionMixin, ProcessWorker):
    """Prefect's process worker for a pool of this layer (docs/decisions/0032-run-admission.md)."""

    job_configuration = CleanJobConfiguration
