"""The circuit breaker on real runs: ten failures pause the schedules, a probe resumes them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import text

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.reconcile import reconcile
from automates.server.client import prefect_client
from automates.settings import Settings
from automates.store.engine import make_engine
from automates.sync import sync
from flows.breaker_probe import breaker_probe
from tests.fixtures.commands import invoke_json
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, raised_alerts, run_all


def breaker(settings: Settings) -> dict[str, Any]:
    engine = make_engine(settings.database_url or "")
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT * FROM automates.breakers WHERE automate = 'fragile'")
        ).one()
    engine.dispose()
    return dict(row._mapping)


def schedules_active(settings: Settings) -> list[bool]:
    async def read() -> list[bool]:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name("script/fragile")
        return [s.active for s in deployment.schedules]

    return asyncio.run(read())


def wait_for_schedules(settings: Settings, active: bool, timeout: float = 30) -> None:
    """The breaker commits its state first and sets the schedules after (the store and the
    Prefect API share no transaction), so a reader can see the state a moment before them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if schedules_active(settings) == [active, active]:
            return
        time.sleep(0.5)
    raise AssertionError(f"schedules never became active={active}: {schedules_active(settings)}")


def wait_for_state(settings: Settings, state: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = breaker(settings)
        if row["state"] == state:
            return row
        time.sleep(0.5)
    raise AssertionError(f"breaker never became {state}: {breaker(settings)}")


def probe(settings: Settings) -> str:
    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
        state = breaker_probe(return_state=True)
    return state.message or ""


def test_ten_failures_open_the_breaker_and_a_probe_recovers_it(
    server: Settings, project: Project, worker: str, tmp_path: Path
) -> None:
    healthy = tmp_path / "healthy"
    project.declare(
        automate(
            "fragile",
            entrypoint=None,
            command=["scripts/until.sh", str(healthy)],
            family="exports",
            schedules=[
                {"slug": "daily", "cron": "0 3 * * *"},
                {"slug": "noon", "cron": "0 12 * * *"},
            ],
            breaker_cooldown_seconds=2,
            work_pool=worker,
            # The ten failures run at once: they are counted one at a time all the same.
            concurrency="allow",
        )
        | {"concurrency_limit": None}
    )
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))

    seen = len(raised_alerts(settings, "fragile"))  # the session's store outlives each test
    runs = asyncio.run(run_all(settings, *[("script/fragile", {})] * 10))
    assert [r.state_name for r in runs] == ["Failed"] * 10
    row = wait_for_state(settings, "open")
    assert row["consecutive_failures"] == 10
    wait_for_schedules(settings, active=False)
    engine = make_engine(settings.database_url or "")
    with engine.connect() as connection:
        states = [
            s
            for (s,) in connection.execute(
                text(
                    "SELECT breaker_state FROM automates.crash_journal WHERE automate = 'fragile'"
                    " ORDER BY id"
                )
            )
        ]
    engine.dispose()
    assert states == ["closed"] * 9 + ["open"]  # one transition, at the threshold
    # One outcome alert per failed run; one breaker alert, at the threshold, not per failure.
    raised = raised_alerts(settings, "fragile")[seen:]
    assert [a["kind"] for a in raised] == ["run_failed"] * 10 + ["breaker_opened"]
    assert {a["flow_run_id"] for a in raised[:10]} == {r.id for r in runs}
    opened = raised[10]
    assert (opened["facts"], opened["resolved_at"]) == ({"consecutive_failures": 10}, None)
    assert "failed 10 times in a row" in opened["body"]

    # An open breaker holds: a re-sync does not resume the schedules, reconcile sees no drift.
    again = asyncio.run(sync(settings, settings.database_url or ""))
    assert again.server_writes == 0
    assert schedules_active(settings) == [False, False]
    assert asyncio.run(reconcile(settings, held=frozenset({"fragile"}))).drifts == []

    # Half-open: the probe's run fails, the breaker re-opens. The half-open state lasts only
    # as long as that run (well under a second on the fast worker), so it is not looked for
    # here: the new opening time is its trace, as only a half-open breaker's failure re-opens
    # (an open breaker's failure keeps its opening time; scheduling/breaker.py).
    time.sleep(2)
    assert probe(settings).startswith("1 probe run(s) started")
    reopened = wait_for_state(settings, "open")
    assert reopened["opened_at"] > row["opened_at"]
    assert reopened["consecutive_failures"] == 11 and reopened["probe_started_at"] is None
    assert schedules_active(settings) == [False, False]
    # The probe's failure is told as a run's; the re-opening is no new breaker alert.
    [probe_failed] = raised_alerts(settings, "fragile")[seen + 11 :]
    assert probe_failed["kind"] == "run_failed"
    assert probe_failed["flow_run_id"] not in {None, *(r.id for r in runs)}

    # Fixed environment: the next probe's run succeeds, the breaker closes, schedules resume.
    healthy.touch()
    time.sleep(2)
    assert probe(settings).startswith("1 probe run(s) started")
    closed = wait_for_state(settings, "closed")
    assert closed["consecutive_failures"] == 0 and closed["opened_at"] is None
    wait_for_schedules(settings, active=True)
    # The recovery resolves the breaker alert.
    raised = raised_alerts(settings, "fragile")[seen:]
    assert [a["kind"] for a in raised[12:]] == ["run_completed", "breaker_closed"]
    assert raised[12]["flow_run_id"] is not None
    assert raised[10]["kind"] == "breaker_opened" and raised[10]["resolved_at"] is not None
    assert len(raised[-1]["facts"]["resolves"]) == 1


def test_an_operator_resets_a_breaker(server: Settings, project: Project) -> None:
    project.declare(
        automate("fragile", entrypoint=None, command=["scripts/until.sh", "/nonexistent"])
    )
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    engine = make_engine(settings.database_url or "")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO automates.breakers (automate, state, consecutive_failures, opened_at)"
                " VALUES ('fragile', 'open', 10, now())"
            )
        )
        # With the alert the breaker raises when it opens.
        raise_alert(connection, catalog.breaker_opened("fragile", 10, 60))
    engine.dispose()
    seen = len(raised_alerts(settings, "fragile"))

    async def pause() -> None:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name("script/fragile")
            for schedule in deployment.schedules:
                await client.update_deployment_schedule(deployment.id, schedule.id, active=False)

    asyncio.run(pause())
    env = cli_env(settings)
    [status] = invoke_json(env, "breaker", "status")
    assert (status["automate"], status["state"]) == ("fragile", "open")
    assert invoke_json(env, "breaker", "reset", "fragile") == {
        "automate": "fragile",
        "was": "open",
        "now": "closed",
        "schedules": "resumed",
    }
    assert breaker(settings)["state"] == "closed"
    assert schedules_active(settings) == [True]
    # The reset resolves the breaker alert.
    raised = raised_alerts(settings, "fragile")
    assert [a["kind"] for a in raised[seen - 1 :]] == ["breaker_opened", "breaker_closed"]
    assert raised[seen - 1]["resolved_at"] is not None
