"""Service automates (`kind: service`): what a declaration may say, what the guard and the
server are given, and the pure restart and crash-loop rules."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from automates.errors import DeclarationError
from automates.registry.loader import parse_registry
from automates.registry.model import SERVICE_FLOW_ENTRYPOINT, Kind
from automates.registry.policy import GuardPolicy, job_variables
from automates.scheduling.services import (
    MAX_RESTART_DELAY_SECONDS,
    crash_looping,
    earlier_failures,
    is_loop_run,
    restart_delay,
)
from automates.server.triggers import declared_triggers
from tests.fixtures.projects import automate


def service(name: str = "brainstorm", **fields: Any) -> dict[str, Any]:
    declared: dict[str, Any] = {
        "kind": "service",
        "entrypoint": None,
        "schedules": None,
        "command": ["scripts/loop.sh", "--forever"],
    }
    return automate(name, **{**declared, **fields})


def problems_of(*automates: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(DeclarationError) as caught:
        parse_registry({"automates": list(automates)})
    return [(p.automate, p.field, p.message) for p in caught.value.problems]


def test_a_service_loads_and_runs_the_guards_service_flow() -> None:
    [loaded] = parse_registry(
        {"automates": [service(once=["scripts/loop.sh", "--catch-up"])]}
    ).automates
    assert loaded.kind is Kind.SERVICE and loaded.kind.deployable
    assert loaded.flow_entrypoint == SERVICE_FLOW_ENTRYPOINT
    assert loaded.once == ("scripts/loop.sh", "--catch-up")
    assert "kind:service" in loaded.tags
    policy = GuardPolicy.of(loaded)
    assert policy.service and policy.command == ("scripts/loop.sh", "--forever")
    assert policy.once_command == ("scripts/loop.sh", "--catch-up")
    # Both commands travel in the guard's policy, not as parameters anyone could replace.
    encoded = json.loads(job_variables(loaded)["env"]["AUTOMATES_GUARD"])
    assert encoded["service"] is True and encoded["once_command"][1] == "--catch-up"


def test_a_script_keeps_its_job_variables_byte_for_byte() -> None:
    [script] = parse_registry(
        {"automates": [automate("s", entrypoint=None, command=["scripts/a.sh"])]}
    ).automates
    encoded = json.loads(job_variables(script)["env"]["AUTOMATES_GUARD"])
    assert "service" not in encoded and "once_command" not in encoded


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"concurrency": "allow", "concurrency_limit": 2}, "concurrency", "exactly one"),
        ({"concurrency": "replace"}, "concurrency", "must be forbid"),
        (
            {"quiet_hours": {"start": "22:00", "end": "06:00", "action": "skip"}},
            "quiet_hours",
            "continuously",
        ),
        ({"triggers": [{"after": "other"}]}, "triggers", "--once"),
        ({"webhook": True}, "webhook", "not by the webhook"),
        ({"approval": "before_enable"}, "approval", "before_first_run"),
        (
            {"schedules": [{"slug": "d", "cron": "0 3 * * *", "timezone": "UTC"}]},
            "schedules",
            "takes no schedule",
        ),
    ],
)
def test_what_a_service_cannot_declare(fields: dict[str, Any], field: str, words: str) -> None:
    [(name, where, message)] = problems_of(service(**fields))
    assert (name, where) == ("brainstorm", field)
    assert words in message


def test_a_service_runs_a_command_and_only_a_service_has_a_one_shot_mode() -> None:
    flow_service = service(command=None, entrypoint="flows/hello.py:hello")
    assert problems_of(flow_service) == [
        (
            "brainstorm",
            "command",
            "a service runs a command (its loop): give command, not entrypoint",
        )
    ]
    [(_, field, message)] = problems_of(automate("a1", once=["scripts/a.sh"]))
    assert field == "once" and "only a service" in message


def test_the_keep_running_trigger_restarts_crashed_and_failed_loop_runs_only() -> None:
    [enabled] = parse_registry({"automates": [service()]}).automates
    [trigger] = declared_triggers(enabled)
    assert trigger.expect == ("prefect.flow-run.Crashed", "prefect.flow-run.Failed")
    assert trigger.enabled and trigger.parameters is None  # the defaults: a loop run
    assert {"prefect.resource.role": "deployment", "prefect.resource.name": "brainstorm"} in (
        trigger.match_related
    )
    [disabled] = parse_registry({"automates": [service(enabled=False)]}).automates
    assert not declared_triggers(disabled)[0].enabled


def test_restart_delay_doubles_with_quick_exits_up_to_the_cap() -> None:
    assert [restart_delay(2.0, n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert restart_delay(2.0, 9) == MAX_RESTART_DELAY_SECONDS
    assert restart_delay(2.0, 10_000) == MAX_RESTART_DELAY_SECONDS


def test_a_crash_loop_is_more_exits_than_allowed_within_the_window() -> None:
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    recent = [now - timedelta(seconds=s) for s in (1, 2, 3, 4, 5)]
    assert not crash_looping(recent, now, restarts=5, window=600)
    assert crash_looping([*recent, now], now, restarts=5, window=600)
    old = [now - timedelta(seconds=700)] * 10
    assert not crash_looping([*old, *recent], now, restarts=5, window=600)


def test_earlier_failures_count_back_to_the_last_stop() -> None:
    t = [datetime(2026, 12, 4, 12, m, tzinfo=UTC) for m in range(5)]
    newest_first = [
        ("CRASHED", t[4]),
        ("FAILED", t[3]),
        ("COMPLETED", t[2]),  # a loop run that was skipped (another one ran)
        ("CANCELLED", t[1]),  # a stop: what came before does not count
        ("CRASHED", t[0]),
    ]
    assert earlier_failures(newest_first) == [t[4], t[3]]


def test_a_loop_run_is_one_without_the_once_parameter() -> None:
    assert is_loop_run({}) and is_loop_run(None) and is_loop_run({"once": False})
    assert not is_loop_run({"once": True})


def test_the_store_accepts_every_kind() -> None:
    latest = importlib.import_module("automates.store.migrations.versions.0010_service_kind")
    assert tuple(kind.value for kind in Kind) == latest.AFTER  # the CHECK list: every kind
