"""A hostile registry through the commands that read it: `automates validate` and `automates
sync`, run as an operator runs them, under a memory cap. Each is refused with the automate,
the field and (for the file) the line; nothing reaches the server or the registry table."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from automates.server.deployed import ServerState
from automates.settings import Settings
from automates.sync import sync
from tests.fixtures.commands import run_module
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env
from tests.integration.test_sync import registry_table, state
from tests.unit.test_registry_limits import ANCHOR_BOMB

# The CLI validates the shipped registry within 256 MiB of address space; expanding the bomb
# below would need gigabytes.
MEMORY_CAP = 512 * 1024 * 1024
# Only a safety net, so that a regression fails instead of hanging the suite.
WALL_TIMEOUT = 300

# The unit tests' anchor bomb (about 387 million strings once expanded), as one more entry.
BOMB = ANCHOR_BOMB.removeprefix("automates:\n")


def good(description: str = "fine, as deployed") -> str:
    return yaml.safe_dump(
        {"automates": [automate("fine", description=description), automate("other")]},
        sort_keys=False,
    )


def bomb() -> bytes:
    # The bomb's first anchor is on line 9 of its entry.
    text = good("changed: must not be deployed")
    return (text + BOMB).encode()


def not_utf8() -> bytes:
    # Latin-1 bytes pasted into a description.
    return good("cafX").encode().replace(b"cafX", b"caf\xe9 cr\xe8me")


def line_and_column(text: str, found: str) -> str:
    at = text.index(found)
    return f"line {text[:at].count(chr(10)) + 1}, column {at - text.rfind(chr(10), 0, at)}"


def huge_description() -> bytes:
    return good("x" * 5_000_000).encode()


def long_description() -> bytes:
    return good("x" * 5_000).encode()


def deep_parameters() -> bytes:
    deep = "  parameters: {p: " + "[" * 500 + "\n  kind:"
    return good("changed").replace("  kind:", deep, 1).encode()


# Each bad registry: its bytes, then what the refusal must say (automate and field, message).
BAD: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "anchor bomb": (
        bomb,
        "automate '<registry>', field 'file'",
        f"line {good().count(chr(10)) + 8}, column 10: anchor &a",
    ),
    "non-utf8 bytes": (
        not_utf8,
        "automate '<registry>', field 'file'",
        f"not UTF-8: byte 0xe9 at {line_and_column(good('cafX'), 'X')}",
    ),
    "5 MB description": (
        huge_description,
        "automate '<registry>', field 'file'",
        "larger than 1048576 bytes",
    ),
    "5 kB description": (
        long_description,
        "automate 'fine', field 'description'",
        "String should have at most 4096 characters",
    ),
    "deep parameters": (
        deep_parameters,
        "automate '<registry>', field 'file'",
        "nested more than 32 levels deep",
    ),
}


def capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def automates(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`automates ARGS` as an operator runs it, under the memory cap."""
    return run_module("automates.cli", *args, env=env, timeout=WALL_TIMEOUT, preexec_fn=capped)


def refused(done: subprocess.CompletedProcess[str], where: str, what: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    said = " ".join(done.stderr.split())  # as one line: the console wraps at its width
    assert "nothing was changed" in said
    assert f"{where}: " in said and what in said, done.stderr


def validate_env(project: Project) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUTOMATES_")},
        "AUTOMATES_PROJECT_ROOT": str(project.root),
        "AUTOMATES_REGISTRY_FILE": str(project.registry),
    }


def test_validate_refuses_the_anchor_bomb_within_the_memory_cap(project: Project) -> None:
    # The path that exposed it: validate passed it, then sync allocated without bound.
    content, where, what = BAD["anchor bomb"]
    project.registry.write_bytes(content())
    refused(automates(validate_env(project), "validate"), where, what)


def test_validate_reports_bytes_that_are_not_utf8_as_json(project: Project) -> None:
    project.registry.write_bytes(not_utf8())
    done = automates(validate_env(project), "validate", "--json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [problem] = json.loads(done.stdout)["problems"]
    assert (problem["automate"], problem["field"]) == ("<registry>", "file")
    assert problem["message"].startswith("not UTF-8: byte 0xe9 at line ")


def snapshot(settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What sync could have written: every deployment as read back, and the registry table."""
    deployed: ServerState = state(settings)
    deployments = {
        name: d.response.model_dump(mode="json", exclude={"flow_run_count"})
        for name, d in deployed.deployments.items()
    }
    return deployments, registry_table(settings)


@pytest.mark.parametrize("case", sorted(BAD))
def test_sync_of_a_hostile_registry_writes_nothing(
    server: Settings, project: Project, case: str
) -> None:
    project.registry.write_text(good())
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    before = snapshot(settings)
    assert sorted(before[0]) == ["hello/fine", "hello/other"]

    content, where, what = BAD[case]
    project.registry.write_bytes(content())  # `fine` changed, plus whatever is hostile
    refused(automates(cli_env(settings), "sync"), where, what)

    assert snapshot(settings) == before
