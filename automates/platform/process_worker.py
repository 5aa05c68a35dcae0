"""The layer's process worker: Prefect's, admitting only declared runs, with a clean environment.

It is Prefect's `ProcessWorker` (same pool type `process`, same base job template, a fresh
process per run) with these differences, all decided before a run's process exists:

- each run passes `automates.platform.admission` first; a refused one ends `Failed` with the
  reason and nothing starts;
- a run the guard's first pre-checks end from the run alone (wrong environment, quiet window,
  a missed tick under `skip`) is settled by the worker, with no process
  (`automates.platform.before_start`);
- a run's process gets `run_environment` of the worker's environment (no operator secrets),
  not the whole of it;
- a run of a deployment sync made starts in the worker's own checkout (the deployment names
  no folder: docs/decisions/0037-workers-run-their-own-checkout.md);
- between fetches of runs, and only with no run in flight, the worker may bring its checkout
  up to its upstream branch and restart itself on the new code (`CodeUpdateMixin`).
"""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio.abc
import anyio.to_thread
from prefect.client.schemas.objects import FlowRun
from prefect.settings import get_current_settings
from prefect.workers.base import BaseWorker, BaseWorkerResult
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult
from pydantic import PrivateAttr

from automates.platform.admission import REFUSED, refusal
from automates.platform.before_start import SettleFirstMixin
from automates.platform.code_update import CheckoutUpdater
from automates.platform.run_env import passed_on
from automates.server.spec import runs_in_worker_checkout


class RunRefused(RuntimeError):
    """A flow run this layer's workers will not start (the reason is the message)."""


class AdmissionMixin:
    """Checks each flow run against `admission.refusal` before a worker submits it."""

    async def _submit_run_and_capture_errors(
        self, flow_run: FlowRun, task_status: anyio.abc.TaskStatus[Any] | None = None
    ) -> BaseWorkerResult | Exception:
        worker: BaseWorker[Any, Any, Any] = self  # type: ignore[assignment]
        try:
            reason, deployment = await _refusal_of(worker, flow_run)
        except Exception as unreadable:  # the API failed us after its retries: try later
            await _put_back(worker, flow_run, unreadable)
            worker._release_limit_slot(flow_run.id)
            if task_status is not None:
                task_status.started(unreadable)
            return unreadable
        if reason is None:
            # The run's configuration is built from the deployment admission just read (one
            # API call fewer, and no change of it between the check and the process).
            admitted = _ADMITTED_DEPLOYMENT.set(deployment)
            try:
                return await super()._submit_run_and_capture_errors(  # type: ignore[misc]
                    flow_run, task_status
                )
            finally:
                _ADMITTED_DEPLOYMENT.reset(admitted)
        await _refuse(worker, flow_run, reason)
        worker._release_limit_slot(flow_run.id)
        refused = RunRefused(reason)
        if task_status is not None:
            task_status.started(refused)
        return refused


async def _refusal_of(
    worker: BaseWorker[Any, Any, Any], flow_run: FlowRun
) -> tuple[str | None, Any | None]:
    """Why the worker must not run `flow_run` (None: it may), and its deployment as read."""
    from prefect.exceptions import ObjectNotFound

    if isinstance(worker, SettleFirstMixin):
        # Read as the run was fetched, and checked against then (before_start.py).
        asked_with = worker.deployment_asked_with(flow_run.id)
        if asked_with is not None:
            return refusal(asked_with, flow_run), asked_with
    deployment = None
    if flow_run.deployment_id is not None:
        for wait in (*READ_RETRY_SECONDS, None):
            try:
                deployment = await worker.client.read_deployment(flow_run.deployment_id)
                break
            except ObjectNotFound:
                return f"deployment {flow_run.deployment_id} no longer exists", None
            except Exception:  # a busy API (HTTP 5xx, a timeout): it passes in seconds
                if wait is None:
                    raise
                await anyio.sleep(wait)
    return refusal(deployment, flow_run), deployment


# The deployment admission read for the run being submitted (this task's), for its configuration.
_ADMITTED_DEPLOYMENT: ContextVar[Any | None] = ContextVar("admitted_deployment", default=None)
# A busy API (its database pool exhausted, a restart) is asked again after these waits.
READ_RETRY_SECONDS = (1.0, 3.0, 8.0)
PUT_BACK_SECONDS = 30


async def _put_back(worker: BaseWorker[Any, Any, Any], flow_run: FlowRun, error: Exception) -> None:
    """A run whose deployment could not be read is neither refused nor started: it goes back
    to Scheduled, a little later, for a worker to take again (nothing is lost)."""
    from datetime import UTC, datetime, timedelta

    from prefect.states import Scheduled

    logger = worker.get_flow_run_logger(flow_run)
    logger.warning(
        "could not read the run's deployment (%s: %s); scheduled again in %d s",
        type(error).__name__,
        error,
        PUT_BACK_SECONDS,
    )
    later = datetime.now(UTC) + timedelta(seconds=PUT_BACK_SECONDS)
    try:
        await worker.client.set_flow_run_state(
            flow_run.id, Scheduled(scheduled_time=later, message=f"admission: {error}"), force=True
        )
    except Exception:  # still unreachable: run-watch re-submits a run left Pending
        logger.warning("could not put the run back; run-watch will re-submit it", exc_info=True)


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


class CodeUpdateMixin:
    """Keeps the worker's checkout on its upstream branch, between runs only.

    `keep_up_to_date` turns it on. Before each fetch of runs (Prefect's polling loop), the
    worker asks its `CheckoutUpdater`, which fetches when due and fast-forwards only when no run
    is in flight; when HEAD moved, the worker re-executes itself. The loop waits for the
    answer, so no run is fetched while the checkout changes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._updater: CheckoutUpdater | None = None
        self._running_flow_run_ids: set[UUID] = set()  # in `_submit_run_and_capture_errors`

    def keep_up_to_date(self, checkout: Path, every_seconds: float) -> None:
        """Update `checkout` from its upstream every `every_seconds` (0: never)."""
        worker: BaseWorker[Any, Any, Any] = self  # type: ignore[assignment]
        self._updater = (
            CheckoutUpdater(checkout, every_seconds, worker._logger) if every_seconds > 0 else None
        )

    def runs_in_flight(self) -> int:
        """Runs fetched and not finished: being submitted, or running (or, in an in-process
        worker, waiting for their scheduled time)."""
        worker: BaseWorker[Any, Any, Any] = self  # type: ignore[assignment]
        return len(worker._submitting_flow_run_ids | self._running_flow_run_ids)

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        if self._updater is not None:
            moved = await anyio.to_thread.run_sync(self._updater.poll, self.runs_in_flight)
            if moved is not None:
                restart(self)
        return await super().get_and_submit_flow_runs()  # type: ignore[misc]

    async def _submit_run_and_capture_errors(
        self, flow_run: FlowRun, task_status: anyio.abc.TaskStatus[Any] | None = None
    ) -> BaseWorkerResult | Exception:
        self._running_flow_run_ids.add(flow_run.id)
        try:
            return await super()._submit_run_and_capture_errors(  # type: ignore[misc]
                flow_run, task_status
            )
        finally:
            self._running_flow_run_ids.discard(flow_run.id)


def restart(worker: Any) -> None:
    """Replace this process with a fresh one on the same command line (and environment); if
    that fails, say so and go on (its runs start from the updated checkout all the same)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    except OSError as failed:
        worker._logger.error("could not restart on the new code (%s); running on", failed)


class SettingsEnvironment:
    """Prefect's settings as the variables a run's process is given, written out once per
    settings object (Prefect builds a new one whenever they change)."""

    def __init__(self) -> None:
        self._settings: object | None = None
        self._variables: dict[str, str] = {}

    def of(self, settings: Any) -> dict[str, str]:
        if settings is not self._settings:
            self._variables = settings.to_environment_variables(exclude_unset=True)
            self._settings = settings
        return dict(self._variables)


# One per worker process, as Prefect's current settings are.
_SETTINGS_ENVIRONMENT = SettingsEnvironment()
# Prefect's engine loads the flow from this entrypoint, in its working folder, when it is set.
FLOW_ENTRYPOINT = "PREFECT__FLOW_ENTRYPOINT"


class CleanJobConfiguration(ProcessJobConfiguration):
    """Prefect's process job configuration, minus the worker's variables a run must not see."""

    @classmethod
    async def resolve_for_flow_run(
        cls, flow_run: Any, *, deployment: Any | None = None, **kwargs: Any
    ) -> Any:
        admitted = _ADMITTED_DEPLOYMENT.get()
        if deployment is None and admitted is not None and admitted.id == flow_run.deployment_id:
            deployment = admitted
        return await super().resolve_for_flow_run(flow_run, deployment=deployment, **kwargs)

    @classmethod
    def _base_environment(cls) -> dict[str, str]:
        # Prefect writes out all its settings for every run (about 20 ms); they change only
        # when the settings object does.
        return _SETTINGS_ENVIRONMENT.of(get_current_settings())

    # True when the deployment names no folder of its own (sync's relative pull step): the
    # worker then starts the run in its own checkout.
    _in_worker_checkout: bool = PrivateAttr(default=False)

    def prepare_for_flow_run(self, flow_run: Any, *args: Any, **kwargs: Any) -> None:
        own = dict(self.env)  # the deployment's and the pool's variables
        deployment = kwargs.get("deployment", args[0] if args else None)
        self._in_worker_checkout = deployment is not None and runs_in_worker_checkout(
            deployment.pull_steps
        )
        super().prepare_for_flow_run(flow_run, *args, **kwargs)
        # Prefect merged the worker's whole environment in; keep of it what may pass.
        self.env = {
            name: value
            for name, value in self.env.items()
            if name in own or os.environ.get(name) != value or passed_on(name)
        }
        if self._in_worker_checkout and deployment is not None and deployment.entrypoint:
            # Sync's one pull step stays in the folder the run starts in: the code is already
            # there, so the engine loads the flow from its entrypoint as it does under Prefect's
            # runner, without reading the deployment again and running a step that changes
            # nothing (docs/decisions/0055-runs-start-from-what-is-built.md).
            self.env[FLOW_ENTRYPOINT] = deployment.entrypoint


class GuardedProcessWorker(SettleFirstMixin, CodeUpdateMixin, AdmissionMixin, ProcessWorker):
    """Prefect's process worker for a pool of this layer (docs/decisions/0032-run-admission.md),
    running sync's deployments in its own checkout."""

    job_configuration = CleanJobConfiguration

    def __init__(self, *args: Any, checkout: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if checkout is None:
            from automates.settings import Settings

            checkout = Settings().project_root
        self.checkout = checkout.resolve()

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        self.place(configuration)
        settled = await self.settle_before_start(flow_run, configuration, task_status)
        if settled is not None:
            return settled
        return await super().run(flow_run, configuration, task_status)

    def place(self, configuration: ProcessJobConfiguration) -> None:
        """Start a run of sync's deployments in this worker's checkout. A folder set by the
        pool's job template wins; a deployment that fetches its code or names its own folder
        (the browser deployment) starts, as with Prefect, in a fresh temporary folder before
        its pull steps move it."""
        in_checkout = isinstance(configuration, CleanJobConfiguration) and (
            configuration._in_worker_checkout
        )
        if configuration.working_dir is None and in_checkout:
            configuration.working_dir = self.checkout
