"""The pure rules of the concurrency policies: which layer holds each policy, how long a run
may wait for its slot, and how a lock holder is named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from automates.guard.concurrency import UNKNOWN, holder_of, wait_budget
from automates.registry.loader import parse_registry
from automates.registry.model import Automate
from automates.registry.policy import GuardPolicy
from automates.server.spec import prefect_concurrency_limit
from tests.fixtures.projects import automate


def declared(**fields: Any) -> Automate:
    [one] = parse_registry({"automates": [{**automate("a1"), **fields}]}).automates
    return one


@pytest.mark.parametrize(
    ("fields", "prefect_limit"),
    [
        ({}, None),  # forbid, the default: the guard's slot, no Prefect limit
        ({"concurrency": "forbid", "concurrency_limit": 1}, None),
        ({"concurrency": "queue_one"}, None),
        ({"concurrency": "replace"}, None),
        ({"concurrency": "allow", "concurrency_limit": 3}, 3),
        ({"concurrency": "allow", "concurrency_limit": None}, None),  # unlimited
    ],
)
def test_only_allow_uses_prefects_deployment_limit(
    fields: dict[str, Any], prefect_limit: int | None
) -> None:
    assert prefect_concurrency_limit(declared(**fields)) == prefect_limit


@pytest.mark.parametrize(
    ("fields", "in_job_variables"),
    [
        ({}, None),  # left out at its default: such deployments keep their job variables
        ({"concurrency": "queue_one"}, "queue_one"),
        ({"concurrency": "replace"}, "replace"),
        ({"concurrency": "allow", "concurrency_limit": None}, "allow"),
    ],
)
def test_the_policy_reaches_the_worker_only_when_not_the_default(
    fields: dict[str, Any], in_job_variables: str | None
) -> None:
    encoded = json.loads(GuardPolicy.of(declared(**fields)).encoded())
    assert encoded.get("concurrency") == in_job_variables


@pytest.mark.parametrize(
    ("timeout", "elapsed", "budget"),
    [
        (300, 0, 295),  # a margin of 5 s at most...
        (300, 100, 195),
        (20, 0, 18),  # ...and of a tenth of a short timeout
        (2, 0, 1.8),
        (1, 0, 0.9),
        (300, 295, 0),  # nothing left: give up at once
        (300, 400, 0),
    ],
)
def test_a_run_waits_for_its_slot_within_its_timeout(
    timeout: float, elapsed: float, budget: float
) -> None:
    assert wait_budget(timeout, elapsed) == pytest.approx(budget)


@pytest.mark.parametrize(
    ("application_name", "holder"),
    [
        (None, None),  # nobody holds the lock
        (
            "automates run 6f1c2b4e-0d1e-4f5a-9b1c-2d3e4f5a6b7c",
            "6f1c2b4e-0d1e-4f5a-9b1c-2d3e4f5a6b7c",
        ),
        ("", UNKNOWN),  # a session that names no run (e.g. psql)
        ("psql", UNKNOWN),
    ],
)
def test_a_lock_holder_is_named_by_its_session(
    application_name: str | None, holder: str | None
) -> None:
    assert holder_of(application_name) == holder
