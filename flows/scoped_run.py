"""scoped-run: a run — one scoped execution over a perimeter, which may delegate task runs.

The perimeter (`platform` or a tenant id) loads its context from the store: machine, client,
contact and mailbox. The run is recorded with its source, trigger, title, status and
timestamps; each delegated task becomes an agent task run (its own flow run on the agent
pool, with the context appended to its prompt), and the run waits for them all.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import get_run_context
from prefect.deployments.flow_runs import run_deployment
from prefect.states import Completed, Failed, State

from automates.agents.runs import RunRequest, context_lines
from automates.agents.task_run_request import TASK_RUN_DEPLOYMENT, flow_parameters
from automates.agents.taskruns import TaskRunRequest, new_task_run
from automates.errors import AutomatesError, UnknownPerimeterError
from automates.guard.recording import store
from automates.settings import Settings
from automates.states import RunStatus, RunTrigger
from automates.store import taskruns as sql
from automates.store.engine import transaction


@flow(name="scoped-run")
def scoped_run(
    perimeter: str,
    title: str,
    trigger: str = RunTrigger.MANUAL,
    source: str = "console",
    tasks: list[dict[str, Any]] | None = None,
) -> State:
    """Record the run, delegate its task runs, wait for them; Completed if they all were."""
    logger = get_run_logger()
    flow_run_id = get_run_context().flow_run.id  # type: ignore[union-attr]
    settings = Settings()
    engine = store(Settings().store_block)  # one engine per process: the dispatcher keeps it warm
    try:
        request = RunRequest.parse(
            {"perimeter": perimeter, "title": title, "trigger": trigger, "source": source}
        )
        with transaction(engine) as connection:
            context = sql.read_perimeter(connection, request.perimeter)
            if context is None:
                raise UnknownPerimeterError(f"unknown perimeter {request.perimeter!r}")
            sql.insert_run(connection, id=flow_run_id, flow_run_id=flow_run_id, **request.row())
        delegated = [
            TaskRunRequest.parse(
                {
                    **task,
                    "perimeter": request.perimeter,
                    "run_id": flow_run_id,
                    "prompt": f"{task.get('prompt', '')}\n\n" + "\n".join(context_lines(context)),
                }
            )
            for task in tasks or []
        ]
    except AutomatesError as error:
        return Failed(message=str(error))
    logger.info("run %s over %s: %d task run(s)", title, perimeter, len(delegated))
    started: list[tuple[UUID, UUID]] = []
    for task in delegated:
        task_run_id = new_task_run(engine, task, settings)
        child = run_deployment(  # sync in a sync flow
            TASK_RUN_DEPLOYMENT,
            parameters=flow_parameters(task, task_run_id),
            timeout=0,
            as_subflow=True,
        )
        started.append((task_run_id, child.id))  # type: ignore[union-attr]
    failed = []
    for task_run_id, child_id in started:
        if not _completed(child_id):
            failed.append(str(task_run_id))
    status = RunStatus.FAILED if failed else RunStatus.COMPLETED
    message = f"{len(started) - len(failed)} of {len(started)} task run(s) completed"
    with transaction(engine) as connection:
        sql.finish_run(connection, flow_run_id, status, message)
    return Completed(message=message) if not failed else Failed(message=message)


def _completed(flow_run_id: UUID, poll_seconds: float = 1.0) -> bool:
    """Wait for a delegated flow run to end; whether it completed."""
    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(flow_run_id).state
            if state is not None and state.is_final():
                return state.is_completed()
            time.sleep(poll_seconds)
