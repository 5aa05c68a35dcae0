"""A task-run request through the agent-task-run flow's parameters and back."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest

from automates.agents.task_run_request import flow_parameters, task_run_request
from automates.errors import TaskRunRequestError

FIELDS = {
    "codename": "audit-billing",
    "agent": "scout",
    "prompt": "Audit the billing module.",
    "template": "audit",
    "perimeter": "platform",
}


def test_the_flow_builds_back_the_request_the_cli_sent() -> None:
    request = task_run_request({**FIELDS, "timeout_seconds": 300, "run_id": str(uuid4())})
    task_run_id = uuid4()
    parameters = flow_parameters(request, task_run_id)
    assert parameters["task_run_id"] == str(task_run_id)
    json.dumps(parameters)  # they travel through the Prefect API
    assert task_run_request(parameters) == request


def test_fields_left_unset_stay_out_of_the_parameters_for_the_defaults() -> None:
    parameters = flow_parameters(task_run_request(FIELDS), uuid4())
    assert "model" not in parameters
    assert "max_budget_usd" not in parameters
    assert parameters["dry_run"] is False


def test_a_bad_field_is_named() -> None:
    with pytest.raises(TaskRunRequestError, match="field 'codename'"):
        task_run_request({**FIELDS, "codename": "Not A Slug"})
    with pytest.raises(TaskRunRequestError, match="field 'surprise'"):
        task_run_request({**FIELDS, "surprise": 1})
