"""Every bad declaration fails naming the automate and the field; good ones load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from automates.errors import DeclarationError
from automates.registry.entrypoints import static_error, static_problems, static_warnings
from automates.registry.loader import load_registry, parse_registry
from automates.registry.model import Kind
from tests.fixtures.projects import automate


def problems_of(*automates: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(DeclarationError) as caught:
        parse_registry({"automates": list(automates)})
    return [(p.automate, p.field, p.message) for p in caught.value.problems]


def test_a_valid_registry_loads_with_defaults() -> None:
    registry = parse_registry({"automates": [automate("nightly-audit")]})
    [a] = registry.automates
    assert a.kind is Kind.RECURRING
    assert a.timeout_seconds == 300
    assert a.concurrency_limit == 1
    assert a.schedules[0].timezone == "Asia/Makassar"
    assert a.tags == (
        "agent:atlas",
        "caste:vigies",
        "family:audits",
        "kind:recurring",
        "managed-by:automates",
    )


def test_unknown_key_names_automate_and_key() -> None:
    assert problems_of(automate("a1", colour="blue")) == [("a1", "colour", "unknown key")]


def test_unknown_key_inside_a_schedule() -> None:
    bad = automate("a1", schedules=[{"cron": "0 3 * * *", "tz": "UTC"}])
    assert problems_of(bad) == [("a1", "schedules[0].tz", "unknown key")]


@pytest.mark.parametrize("cron", ["61 * * * *", "* * * *", "every day", "0 0 * * * *"])
def test_bad_cron(cron: str) -> None:
    [(name, field, message)] = problems_of(automate("a1", schedules=[{"cron": cron}]))
    assert (name, field) == ("a1", "schedules[0].cron")
    assert repr(cron) in message


def test_unknown_timezone() -> None:
    bad = automate("a1", schedules=[{"cron": "0 3 * * *", "timezone": "Mars/Olympus"}])
    [(name, field, message)] = problems_of(bad)
    assert (name, field) == ("a1", "schedules[0].timezone")
    assert "IANA" in message


def test_missing_entrypoint_field() -> None:
    assert problems_of(automate("a1", entrypoint=None)) == [
        ("a1", "entrypoint", "give exactly one of entrypoint or command")
    ]


def test_entrypoint_and_command_together() -> None:
    [(name, field, _)] = problems_of(automate("a1", command=["scripts/x.sh"]))
    assert (name, field) == ("a1", "entrypoint")


def test_a_lib_has_no_command() -> None:
    bad = automate("a1", kind="lib", schedules=[], entrypoint=None, command=["x"])
    assert problems_of(bad) == [("a1", "command", "a lib has no command: it is never run")]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"retries": 11}, "retries"),
        ({"retry_backoff_seconds": 0}, "retry_backoff_seconds"),
        ({"environments": ["Prod"]}, "environments[0]"),
        ({"command": []}, "command"),
        ({"retries": 5, "retry_backoff_seconds": 10}, "retry_backoff_seconds"),  # 310 s > 300
    ],
)
def test_guard_field_rules(fields: dict[str, Any], field: str) -> None:
    declaration = {**automate("a1", entrypoint=None, command=["scripts/x.sh"]), **fields}
    assert [(n, f) for n, f, _ in problems_of(declaration)] == [("a1", field)]


def test_entrypoint_without_function() -> None:
    [(name, field, _)] = problems_of(automate("a1", entrypoint="flows/hello.py"))
    assert (name, field) == ("a1", "entrypoint")


def test_duplicate_name() -> None:
    assert ("a1", "name", "declared 2 times; names must be unique") in problems_of(
        automate("a1"), automate("a1")
    )


def test_recurring_without_schedule() -> None:
    [(name, field, message)] = problems_of(automate("a1", schedules=[]))
    assert (name, field) == ("a1", "schedules")
    assert "needs at least one schedule" in message


def test_oneshot_with_schedule() -> None:
    [(name, field, _)] = problems_of(automate("a1", kind="oneshot"))
    assert (name, field) == ("a1", "schedules")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"caste": "Vigies"}, "caste"),
        ({"name": "Bad_Name"}, "name"),
        ({"kind": "daily"}, "kind"),
        ({"timeout_seconds": 1801}, "timeout_seconds"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"concurrency_limit": 0}, "concurrency_limit"),
        ({"agents": ["atlas", "atlas"]}, "agents"),
        ({"description": ""}, "description"),
    ],
)
def test_field_rules(fields: dict[str, Any], field: str) -> None:
    declaration = {**automate("a1"), **fields}
    assert [(n, f) for n, f, _ in problems_of(declaration)] == [(declaration["name"], field)]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        # forbid (the default), queue_one and replace run one at a time.
        ({}, None),
        ({"concurrency": "queue_one", "concurrency_limit": 1}, None),
        ({"concurrency": "replace", "touches": ["money"]}, None),
        (
            {"concurrency_limit": 3},
            (
                "concurrency_limit",
                "concurrency: forbid runs one at a time, so concurrency_limit must be 1 or left "
                "out, got 3; to let runs overlap, declare concurrency: allow",
            ),
        ),
        (
            {"concurrency": "replace", "concurrency_limit": None},
            (
                "concurrency_limit",
                "concurrency: replace runs one at a time, so concurrency_limit must be 1 or left "
                "out, got null; to let runs overlap, declare concurrency: allow",
            ),
        ),
        # allow overlaps: a number of 2 or more, or null for no limit, said explicitly.
        ({"concurrency": "allow", "concurrency_limit": 2}, None),
        ({"concurrency": "allow", "concurrency_limit": None}, None),
        *[
            (
                fields,
                (
                    "concurrency_limit",
                    "concurrency: allow lets runs overlap, so it needs concurrency_limit: 2 or "
                    "more, or null for no limit (for one run at a time, use forbid or queue_one)",
                ),
            )
            for fields in (
                {"concurrency": "allow"},
                {"concurrency": "allow", "concurrency_limit": 1},
            )
        ],
        (
            {"concurrency": "allow", "concurrency_limit": 2, "touches": ["durable-data"]},
            (
                "concurrency",
                "a run that touches durable-data must never overlap another: use forbid, "
                "queue_one or replace, not allow",
            ),
        ),
        ({"concurrency": "sometimes"}, ("concurrency", None)),
    ],
)
def test_concurrency_and_its_limit_agree(
    fields: dict[str, Any], problem: tuple[str, str | None] | None
) -> None:
    declaration = {**automate("a1"), **fields}  # not automate(**fields): it drops a null
    if problem is None:
        [loaded] = parse_registry({"automates": [declaration]}).automates
        assert loaded.concurrency == fields.get("concurrency", "forbid")
        return
    [(name, field, message)] = problems_of(declaration)
    assert (name, field) == ("a1", problem[0])
    if problem[1] is not None:
        assert message == problem[1]


def test_every_problem_is_reported_at_once() -> None:
    found = problems_of(
        automate("a1", colour="x"),
        automate("a2", schedules=[{"cron": "nope"}]),
        automate("a3", kind="lib", entrypoint="flows/hello.py", schedules=[]),
    )
    assert {(n, f) for n, f, _ in found} == {("a1", "colour"), ("a2", "schedules[0].cron")}


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"automates": [automate("a1")], "defaults": {}}))
    with pytest.raises(DeclarationError) as caught:
        load_registry(path)
    assert [(p.automate, p.field) for p in caught.value.problems] == [("<registry>", "defaults")]


def test_entrypoint_file_missing_or_not_a_flow(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "plain.py").write_text("def job():\n    return 1\n")
    registry = parse_registry(
        {
            "automates": [
                automate("gone", entrypoint="flows/gone.py:job"),
                automate("plain", entrypoint="flows/plain.py:job"),
                automate("absent", entrypoint="flows/plain.py:other"),
                automate("runbook", entrypoint="flows/plain.py:job", runbook="docs/none.md"),
                automate("no-script", entrypoint=None, command=["scripts/none.sh"]),
                automate("not-executable", entrypoint=None, command=["flows/plain.py"]),
                automate("not-on-path", entrypoint=None, command=["no-such-program-here"]),
                automate("on-path", entrypoint=None, command=["sh", "-c", "true"]),
                automate("env-file", env_files=["missing.env"]),
            ]
        }
    )
    found = {(p.automate, p.field): p.message for p in static_problems(registry, tmp_path)}
    assert found[("gone", "entrypoint")] == "file flows/gone.py does not exist"
    assert found[("no-script", "command")] == "file scripts/none.sh does not exist"
    assert (
        found[("not-executable", "command")] == "file flows/plain.py is not executable (chmod +x)"
    )
    assert found[("not-on-path", "command")] == "'no-such-program-here' is not on PATH"
    assert ("on-path", "command") not in found
    assert found[("env-file", "env_files")] == "file missing.env does not exist"
    assert "not decorated with @flow" in found[("plain", "entrypoint")]
    assert "defines no function other()" in found[("absent", "entrypoint")]
    assert found[("runbook", "runbook")] == "file docs/none.md does not exist"


def test_a_disabled_script_whose_command_is_missing_is_a_warning_not_a_refusal(
    tmp_path: Path,
) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "here.py").write_text("")
    script: dict[str, Any] = {"entrypoint": None, "schedules": [], "kind": "oneshot"}
    registry = parse_registry(
        {
            "automates": [
                automate("gone-enabled", command=["scripts/none.sh"], **script),
                automate("gone-disabled", command=["scripts/none.sh"], enabled=False, **script),
                automate("flow-disabled", entrypoint="flows/gone.py:job", enabled=False),
                automate("py-gone", command=["python3", "jobs/gone.py"], **script),
                automate(
                    "py-gone-disabled", command=["python3", "jobs/gone.py"], enabled=False, **script
                ),
                automate("py-here", command=["python3", "jobs/here.py", "x/y"], **script),
                automate("py-option", command=["python3", "-m", "jobs.gone"], **script),
            ]
        }
    )
    found = {(p.automate, p.field): p.message for p in static_problems(registry, tmp_path)}
    assert set(found) == {
        ("gone-enabled", "command"),
        ("flow-disabled", "entrypoint"),  # sync reads a flow's file: still refused
        ("py-gone", "command"),
    }
    assert found[("py-gone", "command")] == "file jobs/gone.py does not exist"
    warned = {(p.automate, p.field): p.message for p in static_warnings(registry, tmp_path)}
    assert warned == {
        ("gone-disabled", "command"): "file scripts/none.sh does not exist",
        ("py-gone-disabled", "command"): "file jobs/gone.py does not exist",
    }
    # Reconcile reads static_error: the disabled ones are still broken there.
    gone = registry.get("gone-disabled")
    assert gone is not None and static_error(gone, tmp_path) is not None
