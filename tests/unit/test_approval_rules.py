"""Approvals: the version a run carries, what the Resume form's answer does, the form itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prefect.client.schemas.objects import StateType

from automates.guard.approval import ApprovalInput, approver, suspend_key, verdict, version
from automates.registry.digest import declaration_digest
from automates.registry.loader import parse_registry
from automates.registry.model import Automate
from automates.registry.policy import GUARD_ENV, GuardPolicy, job_variables
from automates.server.spec import declared_spec
from tests.conftest import REPO
from tests.fixtures.projects import automate


def declared(**fields: Any) -> Automate:
    return parse_registry({"automates": [automate("gated", **fields)]}).automates[0]


def encoded(policy: GuardPolicy) -> dict[str, Any]:
    return dict(json.loads(policy.encoded()))


def test_without_approval_the_policy_carries_no_digest() -> None:
    policy = GuardPolicy.of(declared(), "local")
    assert policy.declaration_digest is None
    assert "declaration_digest" not in encoded(policy) and "approval" not in encoded(policy)


@pytest.mark.parametrize("stage", ["before_enable", "before_first_run"])
def test_the_policy_carries_the_digest_sync_stores(stage: str) -> None:
    gated = declared(approval=stage)
    policy = GuardPolicy.of(gated, "local")
    assert policy.declaration_digest == declaration_digest(gated, "local")
    assert encoded(policy)["declaration_digest"] == policy.declaration_digest
    # The automate's own pool, when declared, is the one the stored digest uses.
    own = declared(approval=stage, work_pool="elsewhere")
    assert GuardPolicy.of(own, "local").declaration_digest == declaration_digest(own, "elsewhere")


def test_the_deployment_carries_the_same_digest() -> None:
    gated = declared(approval="before_first_run")
    spec = declared_spec(gated, REPO / "tests" / "fixtures" / "project", "local")
    carried = GuardPolicy.model_validate_json(spec.job_variables["env"][GUARD_ENV])
    assert carried.declaration_digest == declaration_digest(gated, "local")


def test_any_change_of_the_declaration_is_another_version() -> None:
    before = GuardPolicy.of(declared(approval="before_first_run"), "local")
    after = GuardPolicy.of(declared(approval="before_first_run", description="new"), "local")
    moved = GuardPolicy.of(declared(approval="before_first_run"), "other-pool")
    assert len({before.declaration_digest, after.declaration_digest, moved.declaration_digest}) == 3
    assert suspend_key(before.declaration_digest or "") != suspend_key(
        after.declaration_digest or ""
    )


def test_the_digest_needs_a_pool() -> None:
    with pytest.raises(ValueError, match="default work pool"):
        job_variables(declared(approval="before_first_run"))


DIGEST = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("answer", "who", "state"),
    [
        ({"approve": True}, "prefect-ui", None),
        ({"approve": True, "by": "alice"}, "alice", None),
        ({"approve": True, "by": "  "}, "prefect-ui", None),
        (
            {"approve": False},
            "prefect-ui",
            "rejected by prefect-ui: version 0123456789ab of gated was not approved",
        ),
        (
            {"approve": False, "by": "bob", "note": "wrong target"},
            "bob",
            "rejected by bob: version 0123456789ab of gated was not approved: wrong target",
        ),
    ],
)
def test_the_answer_approves_or_rejects(
    answer: dict[str, Any], who: str, state: str | None
) -> None:
    given = ApprovalInput(**answer)
    assert approver(given) == who
    refused = verdict("gated", DIGEST, given)
    if state is None:
        assert refused is None
        return
    assert refused is not None
    assert (refused.type, refused.name, refused.message) == (StateType.CANCELLED, "Rejected", state)


def test_the_resume_form_asks_for_a_decision() -> None:
    schema = ApprovalInput.model_json_schema()
    assert schema["required"] == ["approve"]
    assert set(schema["properties"]) == {"approve", "by", "note"}
    assert version(DIGEST) == "0123456789ab" and suspend_key(DIGEST) == "approval-0123456789abcdef"
