"""The default pool's worker: Prefect's process worker, started within a second of a trigger.

`FastProcessWorker` is the layer's process worker (process_worker.py: admission, a clean
environment, its own checkout) with three changes, all on Prefect's own worker loop:

- **pickup on the event**: it listens to the server's event stream for runs scheduled on its
  pool (`prefect.flow-run.Scheduled`) and fetches at once; polling stays, every 5 s, for what
  the stream misses (a reconnection, a run scheduled ahead);
- **fetched ahead, started on the tick**: runs are fetched 10 s before their scheduled time
  (Prefect's prefetch) and their process starts 0.4 s before it; the guard holds the body
  until the tick itself;
- **no interpreter start-up on the critical path**: each run's process is forked from the run
  launcher (run_launcher.py), which imported Prefect, the guard and the flows beforehand; when
  the launcher cannot take a run, Prefect's own starter starts a fresh Python as before; the
  run's executor context (Prefect's client, event emitter, control channel and cancellation
  observer) is entered before the run arrives too (executor_contexts.py).

Every run still has a process of its own: Prefect tracks its pid, signals it on cancellation,
watches its exit; timeouts, `replace`, env files, logs and the journals are unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from prefect.client.schemas.objects import FlowRun
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter
from prefect.flows import load_flow_from_flow_run
from prefect.runner._flow_run_executor import FlowRunExecutionResult
from prefect.runner._process_manager import ProcessHandle
from prefect.settings import get_current_settings
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

from automates.platform.executor_contexts import SpareContext
from automates.platform.launcher import Launcher, LauncherStarter
from automates.platform.process_worker import GuardedProcessWorker
from automates.platform.ticks import ENGINE_LEAD_SECONDS, PREFETCH_SECONDS, sleep_until

# The fallback poll: shorter than the prefetch, so a run scheduled ahead is fetched before its
# tick even with Prefect's ±30 % jitter on the interval.
POLL_SECONDS = 5.0
# A lost event stream is opened again after this pause.
RESUBSCRIBE_SECONDS = 5.0


class FastProcessWorker(GuardedProcessWorker):
    """The layer's process worker, started on the event and forked from a warm launcher."""

    def __init__(self, *args: Any, launcher: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("prefetch_seconds", PREFETCH_SECONDS)
        super().__init__(*args, **kwargs)
        self._use_launcher = launcher
        self.launcher: Launcher | None = None
        self._background: list[asyncio.Task[None]] = []
        self._poll_lock = asyncio.Lock()
        self._poll_soon = asyncio.Event()
        self._contexts = SpareContext()

    async def setup(self) -> None:
        await super().setup()
        loop = asyncio.get_running_loop()
        if self._use_launcher:
            self.launcher = Launcher(self.checkout, launcher_environment())
            self._background.append(loop.create_task(self.launcher.keep_running()))
            self._background.append(loop.create_task(self._contexts.keep_one()))
        self._background.append(loop.create_task(self._listen_for_runs()))
        self._background.append(loop.create_task(self._poll_on_events()))

    async def teardown(self, *exc_info: Any) -> None:
        try:
            await super().teardown(*exc_info)  # runs end first: their exits come from the launcher
        finally:
            if self.launcher is not None:
                await self.launcher.close()
            await self._contexts.close()
            for task in self._background:
                task.cancel()
            for task in self._background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        # One fetch at a time: an event and the poll arriving together fetch once each, in turn.
        async with self._poll_lock:
            return await super().get_and_submit_flow_runs()

    async def _poll_on_events(self) -> None:
        while True:
            await self._poll_soon.wait()
            self._poll_soon.clear()
            try:
                await self.get_and_submit_flow_runs()
            except Exception:
                self._logger.warning("fetching runs on an event failed", exc_info=True)

    async def _listen_for_runs(self) -> None:
        """Fetch as soon as the server says a run was scheduled on this pool."""
        while True:
            pool = self._work_pool
            if pool is None:  # not yet synced with the server
                await asyncio.sleep(0.2)
                continue
            wanted = EventFilter(
                event=EventNameFilter(name=["prefect.flow-run.Scheduled"]),
                any_resource=EventAnyResourceFilter(id=[f"prefect.work-pool.{pool.id}"]),
            )
            try:
                async with get_events_subscriber(filter=wanted) as subscriber:
                    async for _ in subscriber:
                        self._poll_soon.set()
            except Exception as lost:
                self._logger.info(
                    "the server's event stream is unavailable (%s); polling every %s s",
                    type(lost).__name__,
                    POLL_SECONDS,
                )
            await asyncio.sleep(RESUBSCRIBE_SECONDS)

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        await sleep_until(flow_run.expected_start_time, lead=ENGINE_LEAD_SECONDS)
        self.place(configuration)
        settled = await self.settle_before_start(flow_run, configuration, task_status)
        if settled is not None:
            return settled
        if self.launcher is None or not configuration._command_configured:
            return await ProcessWorker.run(self, flow_run, configuration, task_status)
        return await self._run_launched(flow_run, configuration, task_status)

    async def _run_launched(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None,
    ) -> ProcessWorkerResult:
        """Prefect's `ProcessWorker.run` for a configured command, with the launcher's
        starter in place of `EngineCommandStarter`."""
        status = task_status if task_status is not None else anyio.TASK_STATUS_IGNORED
        folder = (
            contextlib.nullcontext(configuration.working_dir)
            if configuration.working_dir
            else tempfile.TemporaryDirectory(suffix="prefect")
        )
        with folder as working_dir, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            async with self._contexts.take() as context:
                starter = LauncherStarter(
                    self.launcher,
                    command=configuration.command,
                    cwd=Path(working_dir).resolve(),
                    env=configuration.env,
                    stream_output=configuration.stream_output,
                    control_channel=context.control_channel,
                )
                executor = context.create_executor(
                    flow_run,
                    starter,
                    resolve_flow=load_flow_from_flow_run,
                    propose_submitting=False,
                )
                execution: FlowRunExecutionResult | None = None

                async def execute(
                    *, task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED
                ) -> None:
                    nonlocal execution
                    execution = await executor.submit(task_status=task_status)

                async with anyio.create_task_group() as group:
                    handle = await group.start(execute)
                    if handle.pid is None:
                        raise RuntimeError("Flow run process has no PID")
                    status.started(handle.pid)
        if execution is None or execution.status_code is None:
            raise RuntimeError("Failed to start flow run process.")
        return ProcessWorkerResult(
            status_code=execution.status_code, identifier=str(execution.handle.pid)
        )


def launcher_environment() -> dict[str, str]:
    """What the launcher imports under: the worker's environment and Prefect's settings, as
    every run's process receives them (each run's own variables replace it after the fork)."""
    settings = get_current_settings().to_environment_variables(exclude_unset=True)
    return {**os.environ, **{name: value for name, value in settings.items() if value}}
