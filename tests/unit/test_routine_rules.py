"""Agents' routines without a server: the declaration a spec becomes, what an agent may read
and change, and what the tool-call journal keeps of arguments."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from automates.errors import RoutineError
from automates.mcp.journal import REDACTED, journaled_arguments
from automates.registry.model import ORIGIN_AGENT_TAG, Automate
from automates.registry.routine import PROMPT_FLOW, RoutineSpec
from automates.routines.scope import AgentScope
from automates.scheduling.approval import Approval
from automates.settings import Settings
from automates.settings.groups import AgentSettings


def spec(**fields: Any) -> RoutineSpec:
    values: dict[str, Any] = {
        "name": "morning-digest",
        "description": "Summarise the night's alerts.",
        "schedule": {"cron": "0 9 * * *", "timezone": "Europe/Paris"},
        "prompt": "Summarise the alerts raised since yesterday 18:00.",
    }
    return RoutineSpec.model_validate({**values, **fields})


def test_a_prompt_routine_is_an_agent_task_run_of_its_owner() -> None:
    automate = spec().declaration("scout", pool="agents", trusted=False)
    assert automate.origin == "agent"
    assert automate.agents == ("scout",)
    assert automate.entrypoint == PROMPT_FLOW and automate.work_pool == "agents"
    assert automate.parameters["agent"] == "scout"
    assert automate.parameters["codename"] == "morning-digest"
    assert automate.parameters["template"] == "research"
    assert automate.approval is Approval.BEFORE_ENABLE
    assert {ORIGIN_AGENT_TAG, "agent:scout", "managed-by:automates"} <= set(automate.tags)
    assert automate.command is None


def test_a_trusted_agents_routine_needs_no_approval() -> None:
    automate = spec().declaration("scout", pool="agents", trusted=True)
    assert automate.approval is Approval.NONE


def test_an_entrypoint_routine_runs_on_the_default_pool() -> None:
    automate = spec(prompt=None, entrypoint="flows/hello.py:hello").declaration(
        "scout", pool="agents", trusted=False
    )
    assert automate.entrypoint == "flows/hello.py:hello"
    assert automate.work_pool is None and automate.parameters == {}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"prompt": None}, "prompt"),  # neither prompt nor entrypoint
        ({"entrypoint": "flows/hello.py:hello"}, "prompt"),  # both
        ({"name": "../etc/passwd"}, "name"),
        ({"name": "x" * 64}, "name"),
        ({"prompt": "p" * 20_001}, "prompt"),
        ({"description": ""}, "description"),
        ({"command": ["rm", "-rf", "/"]}, "command"),  # no routine runs a command
        ({"work_pool": "local"}, "work_pool"),
        ({"schedule": {"cron": "61 * * * *"}}, "schedule"),
        ({"schedule": {"cron": "0 9 * * *", "parameters": {"agent": "atlas"}}}, "schedule"),
        ({"timeout_seconds": 100_000}, "timeout_seconds"),
    ],
)
def test_a_malformed_spec_is_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        spec(**fields)
    assert field in str(refused.value)


def declared(name: str, origin: str, agents: tuple[str, ...]) -> Automate:
    return Automate.model_validate(
        {
            "name": name,
            "kind": "oneshot",
            "caste": "c",
            "family": "f",
            "agents": agents,
            "description": "d",
            "entrypoint": "flows/hello.py:hello",
            "origin": origin,
        }
    )


def scope(agent: str, **grants: tuple[str, ...]) -> AgentScope:
    return AgentScope.of(agent, Settings(agent=AgentSettings(read_grants=grants)))


def test_an_agent_changes_only_its_own_routines() -> None:
    own = declared("mine", "agent", ("scout",))
    other = declared("theirs", "agent", ("atlas",))
    operator = declared("ops", "operator", ("scout",))
    unrelated = declared("payroll", "operator", ("atlas",))
    scout = scope("scout")
    assert scout.changeable(own, "mine") is own
    with pytest.raises(RoutineError, match="never change"):
        scout.changeable(operator, "ops")  # visible, read-only
    for hidden, name in ((other, "theirs"), (unrelated, "payroll"), (None, "ghost")):
        with pytest.raises(RoutineError, match=r"no routine named .* is visible"):
            scout.readable(hidden, name)  # the same answer as for a name that does not exist


def test_a_read_grant_lets_an_agent_read_never_change() -> None:
    other = declared("theirs", "agent", ("atlas",))
    scout = scope("scout", scout=("atlas",))
    assert scout.readable(other, "theirs") is other
    with pytest.raises(RoutineError, match=r"routine of agent 'atlas'.*never change"):
        scout.changeable(other, "theirs")


def test_the_journal_keeps_no_secret_and_no_flood() -> None:
    kept = journaled_arguments(
        {
            "name": "x",
            "changes": {"prompt": "p" * 5000, "api_key": "sk-123", "nested": [{"password": "pw"}]},
        }
    )
    assert kept["name"] == "x"
    assert kept["changes"]["api_key"] == REDACTED
    assert kept["changes"]["nested"] == [{"password": REDACTED}]
    assert kept["changes"]["prompt"].endswith("(5000 characters)")
    assert len(kept["changes"]["prompt"]) < 300
