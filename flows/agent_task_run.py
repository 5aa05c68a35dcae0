"""agent-task-run: one attempt of an agent task run — the LLM CLI spawned with the permissions
of its template, streamed into the store and this run's log, bounded by time and budget.

`prefect deployment run agent-task-run/agent-task-run --param codename=... --param agent=...`
and `automates task-run start` both land here. The run's final state names the outcome:
Completed, or Failed named `Failed`, `TimedOut`, `OverBudget` (refused before start, or killed
past its per-run budget), and Cancelled when an operator cancelled it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.context import get_run_context
from prefect.runtime import flow_run as runtime_flow_run
from prefect.states import Cancelled, Completed, Failed, State

from automates.agents.task_run_request import task_run_request
from automates.agents.taskruns import TaskRunResult, execute
from automates.errors import AutomatesError
from automates.guard.recording import store
from automates.settings import Settings

STATE_NAMES = {"failed": "Failed", "timed_out": "TimedOut", "over_budget": "OverBudget"}


@flow(name="agent-task-run")
def agent_task_run(
    codename: str,
    agent: str,
    prompt: str,
    template: str,
    perimeter: str,
    exit_criteria: str | None = None,
    model: str | None = None,
    timeout_seconds: int | None = None,
    max_budget_usd: float | None = None,
    dry_run: bool = False,
    run_id: str | None = None,
    task_run_id: str | None = None,
) -> State:
    """Run the LLM CLI for one agent task; the state says how it ended and why."""
    logger = get_run_logger()
    flow_run_id = get_run_context().flow_run.id  # type: ignore[union-attr]
    try:
        # The arguments are the request's fields (the schema Prefect validates and shows):
        # the request is built from the run's parameters whole, as the CLI built it.
        request = task_run_request(runtime_flow_run.parameters)
    except AutomatesError as error:
        return Failed(message=str(error))
    # A run started without a task run id (e.g. `prefect deployment run`) is its own task run.
    own_id = UUID(task_run_id) if task_run_id else flow_run_id
    engine = store(Settings().store_block)  # one engine per process: the dispatcher keeps it warm
    cancellation = _Cancellation(flow_run_id)
    try:
        result = execute(
            engine,
            request,
            task_run_id=own_id,
            flow_run_id=flow_run_id,
            settings=Settings(),
            log=logger.info,
            cancel_requested=cancellation.requested,
        )
    finally:
        cancellation.close()
    logger.info("task run %s: %s", own_id, result.message)
    return _state(result)


class _Cancellation:
    """Whether an operator cancelled this flow run; asked every second while the CLI runs,
    through one client opened at the first question (not on the way to the spawn)."""

    def __init__(self, flow_run_id: UUID) -> None:
        self._flow_run_id = flow_run_id
        self._client: SyncPrefectClient | None = None

    def requested(self) -> bool:
        if self._client is None:
            self._client = get_client(sync_client=True)
            self._client.__enter__()
        state = self._client.read_flow_run(self._flow_run_id).state
        return state is not None and state.type in (StateType.CANCELLING, StateType.CANCELLED)

    def close(self) -> None:
        if self._client is not None:
            self._client.__exit__(None, None, None)


def _state(result: TaskRunResult) -> State:
    data: dict[str, Any] = result.model_dump(mode="json")
    if result.status == "completed":
        return Completed(message=result.message, data=data)
    if result.status == "cancelled":
        return Cancelled(message=result.message, data=data)
    return Failed(name=STATE_NAMES.get(result.status, "Failed"), message=result.message, data=data)
