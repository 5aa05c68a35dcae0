"""A synced cron schedule really turns into runs that a real worker completes.

This is the guard against the silent class of break seen with SQLAlchemy 2.1, where Prefect
3.8.8's scheduler accepted deployments and then never created a run.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any, TypeVar

from prefect.client.schemas.objects import FlowRun, StateType

from automates.settings import Settings
from automates.sync import sync
from tests.fixtures.commands import invoke_json
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, runs_of, wait_for

T = TypeVar("T")


def test_a_cron_schedule_runs_to_completion_through_the_worker(
    server: Settings, project: Project, worker: str
) -> None:
    project.declare(
        automate(
            "every-minute",
            schedules=[{"slug": "minutely", "cron": "* * * * *", "timezone": "Asia/Makassar"}],
            parameters={"greeting": "from the schedule"},
            work_pool=worker,
        ),
        automate("on-demand", kind="oneshot", schedules=[], work_pool=worker),
    )
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))

    scheduled = wait_for(
        lambda: [r for r in runs_of(settings, "hello/every-minute") if r.auto_scheduled],
        timeout=60,
        what="the scheduler to create runs",
    )
    assert all(r.expected_start_time and r.expected_start_time.second == 0 for r in scheduled)

    def completed() -> list[FlowRun]:
        return [
            r
            for r in runs_of(settings, "hello/every-minute")
            if r.state_type == StateType.COMPLETED
        ]

    [first, *_] = wait_for(completed, timeout=150, what="a scheduled run to complete")
    assert first.auto_scheduled
    assert first.parameters == {"greeting": "from the schedule"}

    env = cli_env(settings)

    def listed_completed() -> dict[str, dict[str, Any]] | None:
        rows = {row["name"]: row for row in invoke_json(env, "list")}
        return rows if rows["every-minute"]["last_run_state"] == "Completed" else None

    # The list shows the newest run past Pending: the next minute's run may already be
    # Running when the first completes (on a loaded machine a run can end near the minute).
    rows = wait_for(listed_completed, 60, "the list to show the last run Completed")
    assert rows["every-minute"]["runs"] >= 1
    assert rows["every-minute"]["next_runs"], "the next fire time comes from the server"
    assert rows["on-demand"]["next_runs"] == [] and rows["on-demand"]["runs"] == 0
    assert [r["name"] for r in invoke_json(env, "list", "--kind", "oneshot")] == ["on-demand"]

    shown = invoke_json(env, "show", "every-minute")
    assert shown["deployment"] == "hello/every-minute"
    assert len(shown["next_runs"]) >= 2
    assert shown["schedules"] == [
        {"slug": "minutely", "cron": "* * * * *", "timezone": "Asia/Makassar", "parameters": {}}
    ]


def test_show_of_an_unknown_automate_is_a_clear_error(server: Settings, project: Project) -> None:
    project.declare(automate("known"))
    done = subprocess.run(
        [sys.executable, "-m", "automates.cli", "show", "unknown"],
        env=cli_env(project.settings(server)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "no automate named 'unknown' is declared (known: known)" in done.stderr
