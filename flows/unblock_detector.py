"""unblock-detector: agent task runs nobody is moving are retried, up to 4 attempts in all.

A task run is stuck when it stayed pending (no dispatcher picked it up) or running with no sign
of life past its own timeout (the process that ran it died: a killed worker, a lost host) for
longer than the threshold. Its old flow run is marked Crashed, and a new flow run of the same
task run is started; at the 4th attempt it is failed instead. The kill switch (the Prefect
Variable `automates_unblock_kill_switch` set to true, from the UI or
`prefect variable set automates_unblock_kill_switch true`) stops all retries at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.deployments.flow_runs import run_deployment
from prefect.states import Completed, Crashed, State
from prefect.variables import Variable

from automates.agents.task_run_request import TASK_RUN_DEPLOYMENT
from automates.agents.taskruns import MAX_ATTEMPTS
from automates.guard.recording import store
from automates.settings import Settings
from automates.states import TaskRunStatus
from automates.store import taskruns as sql
from automates.store.engine import transaction

KILL_SWITCH = "automates_unblock_kill_switch"
RETRIED_PARAMETERS = (
    "codename",
    "agent",
    "prompt",
    "template",
    "perimeter",
    "exit_criteria",
    "model",
    "timeout_seconds",
    "dry_run",
)


@flow(name="unblock-detector")
def unblock_detector(stuck_seconds: int | None = None) -> State:
    """Retry (or, past the last attempt, fail) every stuck agent task run."""
    logger = get_run_logger()
    if _kill_switch_on():
        logger.warning("kill switch %s is on: nothing retried", KILL_SWITCH)
        return Completed(name="Skipped", message=f"kill switch {KILL_SWITCH} is on")
    threshold = stuck_seconds or Settings().task_run.stuck_seconds
    retried, failed = [], []
    engine = store(Settings().store_block)  # one engine per process: the dispatcher keeps it warm
    with transaction(engine) as connection:
        for row in sql.stuck_task_runs(connection, datetime.now(UTC), threshold):
            _crash_old_run(row)
            if row.attempts >= MAX_ATTEMPTS:
                sql.update_task_run(
                    connection,
                    row.id,
                    status=TaskRunStatus.FAILED,
                    ended_at=datetime.now(UTC),
                    error=f"stuck; gave up after {row.attempts} attempts",
                )
                failed.append(str(row.id))
                logger.warning("task run %s stuck: gave up after %d attempts", row.id, row.attempts)
                continue
            sql.update_task_run(connection, row.id, status=TaskRunStatus.PENDING, pid=None)
            child = run_deployment(  # sync in a sync flow
                TASK_RUN_DEPLOYMENT,
                parameters=_parameters(row),
                timeout=0,
                as_subflow=False,
                tags=["unblock-retry"],
            )
            sql.update_task_run(connection, row.id, flow_run_id=child.id)  # type: ignore[union-attr]
            retried.append(str(row.id))
            logger.info("task run %s stuck: attempt %d started", row.id, row.attempts + 1)
    message = f"{len(retried)} stuck task run(s) retried, {len(failed)} given up"
    return Completed(message=message, data={"retried": retried, "given_up": failed})


def _kill_switch_on() -> bool:
    value = Variable.get(KILL_SWITCH, default=False)
    return str(value).strip().lower() in ("true", "1", "on", "yes")


def _crash_old_run(row: sql.TaskRun) -> None:
    if row.flow_run_id is None:
        return
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(row.flow_run_id).state
        if state is None or not state.is_final():
            client.set_flow_run_state(
                row.flow_run_id,
                Crashed(message="stuck: no sign of life; retried by unblock-detector"),
                force=True,
            )


def _parameters(row: sql.TaskRun) -> dict[str, Any]:
    parameters = {
        name: getattr(row, name) for name in RETRIED_PARAMETERS if getattr(row, name) is not None
    }
    if row.max_budget_usd is not None:
        parameters["max_budget_usd"] = float(row.max_budget_usd)
    if row.run_id is not None:
        parameters["run_id"] = str(row.run_id)
    parameters["task_run_id"] = str(row.id)
    return parameters
