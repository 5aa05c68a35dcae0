"""`automates list`, `show` and `up` as a person reads them, at 80 and at 200 columns.

The server's side of `list` and `show` (deployment, next runs, last run, counts) is given by a
stand-in for `gather_status`: what is under test is how the command prints it.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from automates.cli import platform_cmds, registry_cmds
from automates.overview import AutomateStatus
from automates.platform import lifecycle
from automates.registry.model import Automate
from automates.settings import Settings
from tests.fixtures.commands import invoke
from tests.fixtures.projects import Project, automate, script

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
NAMES = (
    "registry-reconcile",
    "store-maintenance",
    "nightly-billing-reconciliation",
    "on-demand-report",
    "legacy-cleanup-script",
)
RUNBOOK = "docs/runbooks/store-maintenance.md"


@pytest.fixture
def env(project: Project, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    (project.root / RUNBOOK).parent.mkdir(parents=True)
    (project.root / RUNBOOK).write_text("# store-maintenance\n")
    project.declare(
        automate("registry-reconcile", schedules=[{"slug": "hourly", "cron": "7 * * * *"}]),
        automate(
            "store-maintenance",
            caste="horlogers",
            family="maintenance",
            agents=["atlas", "scout"],
            runbook=RUNBOOK,
            timeout_seconds=900,
            retries=2,
            misfire="catch_up",
            approval="before_first_run",
            quiet_hours={
                "start": "22:00",
                "end": "01:00",
                "timezone": "Asia/Makassar",
                "action": "defer",
            },
            schedules=[
                {
                    "slug": "daily-light",
                    "cron": "30 3 * * *",
                    "timezone": "Asia/Makassar",
                    "parameters": {"deep": False},
                },
                {
                    "slug": "weekly-deep",
                    "cron": "45 3 * * 0",
                    "timezone": "Asia/Makassar",
                    "parameters": {"deep": True},
                },
            ],
        ),
        automate(
            "nightly-billing-reconciliation",
            family="maintenance",
            schedules=[{"slug": "nightly", "when": "every day at 2:15", "timezone": "UTC"}],
            quiet_hours={"start": "02:00", "end": "03:00", "timezone": "UTC"},
        ),
        automate("on-demand-report", kind="oneshot", schedules=[]),
        script("legacy-cleanup-script", ["scripts/cleanup.sh", "--all"]),
    )

    async def gather_status(
        settings: Settings, automates: list[Automate], *, next_count: int = 1
    ) -> list[AutomateStatus]:
        return [_status(a, next_count) for a in automates]

    monkeypatch.setattr(registry_cmds, "gather_status", gather_status)
    return project.env()


def _status(automate: Automate, next_count: int) -> AutomateStatus:
    status = AutomateStatus(automate)
    if automate.name == "registry-reconcile":  # its schedules paused: no run scheduled
        status.deployment = f"hello/{automate.name}"
    elif automate.schedules:
        status.deployment = f"hello/{automate.name}"
        status.active_schedules = len(automate.schedules)
        status.next_runs = [NOW + timedelta(hours=1 + i) for i in range(next_count)]
        status.last_run_state = "Completed"
        status.last_run_at = NOW - timedelta(hours=1)
        status.runs, status.failed_runs = 42, 3
    return status


def _printed(
    monkeypatch: pytest.MonkeyPatch, module: Any, width: int, env: dict[str, str], *args: str
) -> list[str]:
    """What `automates ARGS` prints on a console `width` columns wide, line by line."""
    screen = io.StringIO()
    monkeypatch.setattr(module, "console", Console(width=width, file=screen))
    invoke(env, *args)
    lines = screen.getvalue().splitlines()
    assert lines, "nothing printed"
    return lines


@pytest.mark.parametrize("width", [80, 200])
def test_list_shows_every_name_whole_and_fits_the_width(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    lines = _printed(monkeypatch, registry_cmds, width, env, "list")
    assert max(len(line) for line in lines) <= width, "\n".join(lines)
    text = "\n".join(lines)
    assert "…" not in text
    for name in NAMES:
        assert any(f"│ {name} " in line for line in lines), (name, text)
    assert "2026-12-01 09:00 UTC" in text  # the next run, whole
    [paused] = [line for line in lines if "registry-reconcile" in line]
    assert " paused " in paused, paused  # at any width, with or without the schedules
    if width == 80:  # the 30-letter name leaves no room for the lesser columns
        assert lines[1].split() == ["┃", "name", "┃", "next", "run", "┃", "last", "run", "┃"]
        assert lines[-1] == "hidden: kind, caste, family, schedules, runs (--json shows all)"
    else:
        assert "hidden" not in text
        for header in ("kind", "caste", "family", "schedules", "next run", "last run", "runs"):
            assert f" {header} " in lines[1], header
        assert "42 (3 failed)" in text
        assert "30 3 * * * Asia/Makassar" in text


@pytest.mark.parametrize("width", [80, 200])
def test_show_is_a_page_in_plain_words(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    lines = _printed(monkeypatch, registry_cmds, width, env, "show", "store-maintenance")
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= width, text
    for repr_mark in ("['", "{'", "None", "True", "False"):
        assert repr_mark not in text, (repr_mark, text)
    for section in (
        "What it is",
        "Schedules",
        "Guard",
        "Runbook",
        "Runs (from the Prefect server)",
    ):
        assert section in lines, section
    # Each schedule, its cron in its timezone and its next fire time from preview's code.
    fires = [line for line in lines if "— next fires" in line]
    assert len(fires) == 2, text
    assert "daily-light  30 3 * * * in Asia/Makassar — next fires" in fires[0]
    assert "weekly-deep  45 3 * * 0 in Asia/Makassar — next fires" in fires[1]
    assert re.search(r"\d{4}-\d{2}-\d{2} 03:30 WITA", text), text
    assert "parameters: deep=false" in text
    assert RUNBOOK in text and "not found" not in text
    assert "catch up:" in text and "approve store-maintenance" in text
    assert "agents  atlas, scout" in text
    assert "quiet hours  22:00-01:00 Asia/Makassar: ticks inside become one run at the" in text
    assert "last run    Completed, 2026-12-01 07:00 UTC" in text


def test_show_says_when_quiet_hours_skip_every_tick(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _printed(monkeypatch, registry_cmds, 200, env, "show", "nightly-billing-reconciliation")
    [nightly] = [line for line in lines if line.lstrip().startswith("nightly ")]
    assert nightly.rstrip().endswith(
        "“every day at 2:15” (cron '15 2 * * *') in UTC — its next 50 ticks all fall in the "
        "quiet hours: skipped"
    ), nightly


def test_show_of_an_automate_without_schedules(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "\n".join(_printed(monkeypatch, registry_cmds, 80, env, "show", "legacy-cleanup-script"))
    assert "command  scripts/cleanup.sh --all" in text
    assert "none: it runs when asked (`automates trigger legacy-cleanup-script`)" in text
    assert "not on the server (`automates sync` deploys it)" in text


def test_json_of_list_and_show_is_unchanged(env: dict[str, str]) -> None:
    listed = json.loads(invoke(env, "list", "--json").stdout)
    assert [row["name"] for row in listed] == list(NAMES)
    shown = json.loads(invoke(env, "show", "store-maintenance", "--json").stdout)
    assert list(shown) == [
        "name",
        "kind",
        "caste",
        "family",
        "agents",
        "description",
        "runbook",
        "entrypoint",
        "command",
        "enabled",
        "timeout_seconds",
        "concurrency_limit",
        "work_pool",
        "schedules",
        "deployment",
        "active_schedules",
        "next_runs",
        "last_run_state",
        "last_run_at",
        "runs",
        "failed_runs",
    ]
    assert shown["agents"] == ["atlas", "scout"]
    assert shown["schedules"][0] == {
        "slug": "daily-light",
        "cron": "30 3 * * *",
        "timezone": "Asia/Makassar",
        "parameters": {"deep": False},
    }
    assert shown["next_runs"] == [(NOW + timedelta(hours=h)).isoformat() for h in range(1, 6)]
    assert shown["last_run_at"] == "2026-12-01T07:00:00+00:00"
    assert (shown["runs"], shown["failed_runs"]) == (42, 3)


def test_up_ends_its_summary_cleanly(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    def up(settings: Settings, *, run_sync: bool, step: Any) -> lifecycle.UpReport:
        return lifecycle.UpReport(
            ui_url="http://127.0.0.1:4200",
            api_url="http://127.0.0.1:4200/api",
            database="postgresql://127.0.0.1:5432/automates",
            started=["embedded-postgresql", "prefect-server", "worker-local", "agent-dispatcher"],
            reused=["supervisord"],
        )

    monkeypatch.setattr(lifecycle, "up", up)
    lines = _printed(monkeypatch, platform_cmds, 80, project.env(), "up", "--no-sync")
    assert lines[0] == (
        "up: started embedded-postgresql, prefect-server, worker-local, agent-dispatcher"
    )
    assert lines[1] == "already running: supervisord"
    for line in lines:
        assert not line.endswith((";", " ")), repr(line)
    # It ends by saying what to do next, each command whole on its line.
    after = lines[lines.index("Next:") + 1 :]
    for command, _ in platform_cmds.NEXT_STEPS:
        assert f"  {command}" in after


@pytest.mark.parametrize(
    ("terminal", "as_json", "shown"),
    [(True, False, True), (True, True, False), (False, False, False)],
)
def test_a_long_operation_shows_a_spinner_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, terminal: bool, as_json: bool, shown: bool
) -> None:
    from io import StringIO

    from rich.console import Console

    from automates.cli import output

    written = StringIO()
    monkeypatch.setattr(output, "console", Console(file=written, force_terminal=terminal))
    with output.working("dumping the database…", as_json):
        pass  # the spinner draws when it starts
    assert ("dumping the database…" in written.getvalue()) is shown
