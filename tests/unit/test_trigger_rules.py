"""Event triggers: what the registry accepts, and the Prefect automation each becomes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prefect.events.schemas.automations import Automation

from automates.errors import DeclarationError
from automates.registry.loader import parse_registry
from automates.registry.model import MANAGED_TAG
from automates.server.triggers import as_automation, declared_triggers, deployed_triggers
from tests.fixtures.projects import automate


def problems(*declarations: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(DeclarationError) as refused:
        parse_registry({"automates": list(declarations)})
    return [(p.automate, p.field, p.message) for p in refused.value.problems]


NAMED_A = {"prefect.resource.name": "a"}


def lib(name: str) -> dict[str, Any]:
    return automate(name, kind="lib", schedules=[], entrypoint="flows/hello.py")


@pytest.mark.parametrize(
    ("declarations", "expected"),
    [
        (
            [automate("b", triggers=[{"after": "ghost"}])],
            ("b", "triggers[0].after", "no automate named 'ghost' is declared"),
        ),
        (
            [automate("b", triggers=[{"after": "b"}])],
            ("b", "triggers[0].after", "an automate cannot start after itself"),
        ),
        (
            [automate("b", triggers=[{"event": "x.y"}, {"after": "shared"}]), lib("shared")],
            ("b", "triggers[1].after", "'shared' is a lib: it never runs"),
        ),
        (
            [automate("a", triggers=[{"after": "b"}]), automate("b", triggers=[{"after": "a"}])],
            ("a", "triggers", "after-triggers loop (a runs after b runs after a)"),
        ),
        (
            [
                automate("a", triggers=[{"after": "c"}]),
                automate("b", triggers=[{"after": "a"}]),
                automate("c", triggers=[{"after": "b"}]),
            ],
            ("a", "triggers", "after-triggers loop (a runs after c runs after b runs after a)"),
        ),
        (
            [automate("b", triggers=[{"event": "prefect.flow-run.Completed"}])],
            ("b", "triggers[0].match", "a 'prefect.flow-run.Completed' trigger needs match"),
        ),
        (
            [automate("a"), automate("b", triggers=[{"after": "a", "match": {"k": "v"}}])],
            ("b", "triggers[0].match", "applies to event triggers only"),
        ),
        (
            [automate("b", triggers=[{"after": "a", "event": "x"}]), automate("a")],
            ("b", "triggers[0]", "give exactly one of after or event"),
        ),
        (
            [automate("b", triggers=[{}])],
            ("b", "triggers[0]", "give exactly one of after or event"),
        ),
        (
            [automate("b", triggers=[{"event": "x", "when": "later"}])],
            ("b", "triggers[0].when", "unknown key"),
        ),
    ],
)
def test_bad_triggers_are_refused_naming_the_field(
    declarations: list[dict[str, Any]], expected: tuple[str, str, str]
) -> None:
    found = problems(*declarations)
    assert len(found) == 1, found
    name, field, message = found[0]
    assert (name, field) == expected[:2] and message.startswith(expected[2]), found


def test_naming_a_refused_declaration_is_not_a_second_problem() -> None:
    found = problems(automate("a", timezone="Mars/Base"), automate("b", triggers=[{"after": "a"}]))
    assert [name for name, _, _ in found] == ["a"]


def test_a_loop_is_reported_once() -> None:
    found = problems(
        automate("a", triggers=[{"after": "b"}]), automate("b", triggers=[{"after": "a"}])
    )
    assert [field for _, field, _ in found] == ["triggers"]


def test_good_triggers_load() -> None:
    registry = parse_registry(
        {
            "automates": [
                automate("a"),
                automate("b", triggers=[{"after": "a"}]),
                automate("c", triggers=[{"after": "a"}, {"after": "b"}]),  # a diamond, no loop
                automate(
                    "d",
                    triggers=[{"event": "automates.breaker.opened", "match": NAMED_A}],
                ),
            ]
        }
    )
    assert [len(a.triggers) for a in registry.automates] == [0, 1, 2, 1]


def one(**fields: Any) -> Any:
    return parse_registry({"automates": [automate("a"), automate("b", **fields)]}).get("b")


def test_after_listens_for_completed_runs_of_the_named_deployment() -> None:
    [spec] = declared_triggers(one(triggers=[{"after": "a", "parameters": {"greeting": "x"}}]))
    assert spec.name == "b: after a (trigger 0)"
    assert spec.expect == ("prefect.flow-run.Completed",)
    assert spec.match == {"prefect.resource.id": "prefect.flow-run.*"}
    assert spec.match_related == (
        {"prefect.resource.role": "deployment", "prefect.resource.name": "a"},
        {"prefect.resource.id": f"prefect.tag.{MANAGED_TAG}"},
    )
    assert (spec.enabled, spec.parameters) == (True, {"greeting": "x"})


def test_an_event_trigger_matches_the_declared_labels() -> None:
    [spec] = declared_triggers(
        one(triggers=[{"event": "automates.breaker.opened", "match": NAMED_A}])
    )
    assert (spec.expect, spec.match, spec.match_related) == (
        ("automates.breaker.opened",),
        {"prefect.resource.name": "a"},
        (),
    )
    assert spec.parameters is None  # the deployment's own parameters


def test_a_disabled_automate_has_its_triggers_off() -> None:
    [spec] = declared_triggers(one(triggers=[{"after": "a"}], enabled=False))
    assert spec.enabled is False


def server_copy(core: Any) -> Automation:
    return Automation.model_validate({**core.model_dump(mode="json"), "id": str(uuid.uuid4())})


def test_what_sync_writes_reads_back_equal() -> None:
    declared = one(
        triggers=[
            {"after": "a"},
            {"event": "x.happened", "match": {"k": "v"}, "parameters": {"greeting": "y"}},
        ]
    )
    specs = declared_triggers(declared)
    deployment = uuid.uuid4()
    written = [as_automation(spec, deployment) for spec in specs]
    assert all(w.tags == [MANAGED_TAG] for w in written)
    assert all(w.owner_resource == f"prefect.deployment.{deployment}" for w in written)
    hand_made = server_copy(written[0]).model_copy(update={"tags": []})
    read = deployed_triggers([*map(server_copy, reversed(written)), hand_made])
    assert read == {deployment: specs}
