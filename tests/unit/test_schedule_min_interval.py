"""The minimum interval of routines that agents declare (AUTOMATES_AGENT_MIN_INTERVAL_SECONDS)."""

from __future__ import annotations

from typing import Any

import pytest

from automates.errors import DeclarationError
from automates.registry.agent_intervals import interval_problems
from automates.registry.loader import parse_registry
from automates.scheduling.forms import Form, at_form, cron_form, every_form
from automates.scheduling.min_interval import tightest_gap
from automates.settings import Settings
from automates.settings.groups import AgentSettings
from automates.sync import validated_registry
from tests.fixtures.commands import run_module
from tests.fixtures.projects import Project, automate


@pytest.mark.parametrize(
    ("form", "gap"),
    [
        (every_form("4m"), 240),
        (cron_form("*/2 * * * *"), 120),
        (cron_form("0,3 12 * * *"), 180),  # fires 3 min apart once a day
        (cron_form("59 23 * * *"), 86400),
        (cron_form("0 9,18 * * *"), 32400),
        (at_form("2026-12-01T09:00:00Z"), None),
    ],
)
def test_the_tightest_gap_of_each_form(form: Form, gap: int | None) -> None:
    assert tightest_gap(form, 300) == gap


def test_a_cron_as_tight_as_the_minimum_passes() -> None:
    assert tightest_gap(cron_form("*/5 * * * *"), 300) == 300


def declared(**fields: Any) -> list[tuple[str, str, str]]:
    registry = parse_registry({"automates": [automate("agent-job", **fields)]})
    return [(p.automate, p.field, p.message) for p in interval_problems(registry.automates, 300)]


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"every": "2m"}, "schedules[0].every"),
        ({"cron": "*/2 * * * *"}, "schedules[0].cron"),
        ({"when": "every minute"}, "schedules[0].when"),
        ({"cron": "0,3 12 * * *"}, "schedules[0].cron"),
    ],
)
def test_an_agent_schedule_below_the_minimum_is_refused(
    schedule: dict[str, Any], field: str
) -> None:
    [(name, found, message)] = declared(origin="agent", schedules=[schedule])
    assert (name, found) == ("agent-job", field)
    assert "may fire at most every 5m" in message and "AUTOMATES_AGENT_MIN_INTERVAL" in message


def test_operators_and_slow_enough_agents_pass() -> None:
    assert declared(origin="operator", schedules=[{"every": "1m"}]) == []
    assert declared(origin="agent", schedules=[{"when": "every 15 minutes"}]) == []
    assert declared(origin="agent", schedules=[{"at": "2026-12-01T09:00:00Z"}]) == []


def test_origin_is_validated() -> None:
    with pytest.raises(DeclarationError) as raised:
        parse_registry({"automates": [automate("a1", origin="robot")]})
    [problem] = raised.value.problems
    assert (problem.automate, problem.field) == ("a1", "origin")


def test_sync_validation_applies_the_setting_and_changes_nothing(project: Project) -> None:
    project.declare(automate("agent-job", origin="agent", schedules=[{"every": "10m"}]))
    base = Settings(project_root=project.root, registry_file=project.registry)
    assert validated_registry(base).automates[0].name == "agent-job"
    strict = Settings(
        project_root=project.root,
        registry_file=project.registry,
        agent=AgentSettings(min_interval_seconds=900),
    )
    with pytest.raises(DeclarationError) as raised:
        validated_registry(strict)
    [problem] = raised.value.problems
    assert (problem.automate, problem.field) == ("agent-job", "schedules[0].every")

    # The same refusal through `automates validate`, with the setting from the environment.
    env = project.env(AUTOMATES_AGENT_MIN_INTERVAL_SECONDS="900")
    done = run_module("automates.cli", "validate", env=env)
    assert done.returncode == 2
    assert "automate 'agent-job', field 'schedules[0].every'" in done.stderr
