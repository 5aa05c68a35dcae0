"""A task-run request as the agent-task-run flow's parameters, both ways.

`automates task-run start` (and `prefect deployment run`, and a scoped run) hands an agent
task run to its flow as flow-run parameters: the request's fields, plus the id of the task
run recorded for it. The flow builds its request back from those parameters with the same
function the CLI builds it with, so the two cannot drift apart on a field or a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from automates.agents.taskruns import TaskRunRequest

# The deployment every agent task run is a run of (flows/agent_task_run.py, declared in the
# registry as `agent-task-run`).
TASK_RUN_DEPLOYMENT = "agent-task-run/agent-task-run"
# The one parameter of the flow that is not a field of the request.
TASK_RUN_ID = "task_run_id"


def task_run_request(parameters: Mapping[str, Any]) -> TaskRunRequest:
    """The request the flow's `parameters` carry, validated, or a `TaskRunRequestError`
    naming each field at fault (a field left out takes the request's default)."""
    return TaskRunRequest.parse({k: v for k, v in parameters.items() if k != TASK_RUN_ID})


def flow_parameters(request: TaskRunRequest, task_run_id: UUID) -> dict[str, Any]:
    """The flow's parameters for `request`, recorded as task run `task_run_id`; as JSON,
    since they travel through the Prefect API, and without the fields left unset."""
    return {**request.model_dump(mode="json", exclude_none=True), TASK_RUN_ID: str(task_run_id)}
