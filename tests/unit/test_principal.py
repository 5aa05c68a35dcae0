"""Who asked for a run, as the journal records it (automates/principal.py)."""

from __future__ import annotations

import pytest

from automates import principal


@pytest.mark.parametrize(
    ("tags", "auto_scheduled", "created_by", "asked_by"),
    [
        (["trigger:manual", "principal:operator:alice"], False, None, "operator:alice"),
        (["principal:agent:scout"], False, None, "agent:scout"),
        (["principal:webhook:token"], False, None, "webhook:token"),
        (["principal:system", "quiet-hours:deferred"], False, None, "system"),
        ([], True, None, "system"),  # the scheduler made it
        ([], False, ("AUTOMATION", "on-upload"), "system"),  # a trigger (an automation)
        ([], False, ("USER", "bob"), "operator:bob"),  # the UI, where Prefect knows the user
        ([], False, None, "operator:unknown"),  # `prefect deployment run`, the UI unnamed
        (["principal:"], False, None, "operator:unknown"),  # an empty tag says nothing
    ],
)
def test_a_runs_principal_is_its_tag_else_what_prefect_knows(
    tags: list[str], auto_scheduled: bool, created_by: tuple[str, str] | None, asked_by: str
) -> None:
    kind, name = created_by or (None, None)
    found = principal.of_run(
        tags, auto_scheduled=auto_scheduled, created_by_type=kind, created_by_name=name
    )
    assert found == asked_by


def test_the_tags_say_who_asked() -> None:
    assert principal.tag(principal.operator("alice")) == "principal:operator:alice"
    assert principal.tag(principal.agent("scout")) == "principal:agent:scout"
    assert principal.tag(principal.webhook("ci")) == "principal:webhook:ci"
    assert principal.tag(principal.SYSTEM) == "principal:system"
