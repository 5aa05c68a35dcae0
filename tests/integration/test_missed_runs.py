"""missed-run-check on a real server, run by a real worker from its declaration: of five
one-off ticks that fell due, the one a worker ran is fine; the one whose pool has no worker,
the one whose run is gone and the one whose run Crashed are each reported once; the one of an
automate an operator paused is not judged, before or after its resume. Ticks that fell due
while the check itself was down are all reported by its next run, and only by it."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.states import Crashed, Running, Scheduled

from automates.scheduling.misfire import show, utc
from automates.scheduling.preview import ticks_between
from automates.settings import Settings
from automates.sync import sync
from tests.conftest import REPO
from tests.fixtures.commands import invoke_json
from tests.fixtures.misfire import api, deployment, deployment_runs, events_named, final
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, raised_alerts, run_deployment, wait_for

CHECK = "missed-run-check/missed-run-check"
GRACE = 2  # seconds


def the_check(work_pool: str) -> dict[str, Any]:
    """The check, declared as a tool: run on demand here, and not itself judged."""
    return automate(
        "missed-run-check",
        kind="tool",
        schedules=[],
        family="sre",
        entrypoint="flows/missed_runs.py:missed_run_check",
        work_pool=work_pool,
    )


def reported_by(settings: Settings, *checks: FlowRun) -> list[dict[str, Any]]:
    """The missed-run events these runs of the check emitted (Prefect relates an event to the
    flow run that emitted it)."""
    ours = {f"prefect.flow-run.{check.id}" for check in checks}
    return [
        event
        for event in events_named(settings, "automates.automate.missed")
        if ours & {related["prefect.resource.id"] for related in event.get("related", [])}
    ]


def missed_alerts(settings: Settings, name: str, seen: int = 0) -> list[dict[str, Any]]:
    """The missed_tick alerts of `name` raised after its first `seen` alerts."""
    return [a for a in raised_alerts(settings, name)[seen:] if a["kind"] == "missed_tick"]


def judged_until(check: FlowRun) -> datetime:
    """Where a run of the check stopped judging: its start, less its grace."""
    assert check.start_time is not None
    return utc(check.start_time) - timedelta(seconds=GRACE)


def test_each_tick_that_did_not_run_is_reported_once(
    server: Settings, project: Project, worker: str
) -> None:
    nobody = f"nobody-{os.urandom(3).hex()}"  # a pool no worker serves
    tick = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    once = [{"slug": "once", "at": tick.isoformat().replace("+00:00", "Z")}]
    later = [{"slug": "once", "at": (tick + timedelta(hours=1)).isoformat()}]
    shutil.copy(REPO / "flows" / "missed_runs.py", project.root / "flows" / "missed_runs.py")
    project.declare(
        automate("served", schedules=once, work_pool=worker),
        automate("stranded", schedules=once, work_pool=nobody),
        automate("vanished", schedules=once, work_pool=nobody),
        automate("crashed", schedules=once, work_pool=nobody),
        automate("not-yet", schedules=later, work_pool=nobody),  # due in an hour: not judged
        automate("paused", schedules=once, work_pool=nobody),  # paused by an operator
        the_check(worker),
    )
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    invoke_json(cli_env(settings), "pause", "paused", "--reason", "host moved", "--by", "ana")
    found = {
        name: api(settings, partial(PrefectClient.read_deployment_by_name, name=f"hello/{name}"))
        for name in ("served", "stranded", "vanished", "crashed")
    }

    def ticked(name: str) -> list[Any] | None:
        runs = deployment_runs(settings, found[name].id)
        return runs if runs and (name != "served" or all(final(r) for r in runs)) else None

    runs = {name: wait_for(partial(ticked, name), 120, f"{name}'s run") for name in found}
    assert [r.state_name for r in runs["served"]] == ["Completed"]

    async def as_it_happened(client: PrefectClient) -> None:
        await client.delete_flow_run(runs["vanished"][0].id)  # e.g. removed by hand
        await client.set_flow_run_state(
            runs["crashed"][0].id, Crashed(message="the host died"), force=True
        )

    api(settings, as_it_happened)
    time.sleep(max(0.0, (tick + timedelta(seconds=3) - datetime.now(UTC)).total_seconds()))
    names = ("served", "stranded", "vanished", "crashed", "not-yet", "paused")
    seen = {name: len(raised_alerts(settings, name)) for name in names}

    check = run_deployment(settings, CHECK, timeout=180, grace_seconds=GRACE)
    assert check.state is not None and check.state.is_completed()
    assert (check.state_name, check.state.message) == (
        "Findings",
        "4 due tick(s) checked, 3 missed",
    )

    def three() -> list[dict[str, Any]] | None:
        events = reported_by(settings, check)
        return events if len(events) == 3 else None

    events = {e["resource"]["prefect.resource.name"]: e for e in wait_for(three, 60, "events")}
    assert set(events) == {"stranded", "vanished", "crashed"}
    # Late once Prefect's late-runs service has passed by, Scheduled until then.
    stranded = events["stranded"]["payload"]
    assert stranded["state"] in ("Scheduled", "Late")
    assert stranded["reason"] == (
        f"its run is still {stranded['state']}: it never started "
        f"(does a worker serve pool {nobody}?)"
    )
    assert events["vanished"]["payload"]["reason"].startswith("no flow run exists for it")
    assert events["crashed"]["payload"]["state"] == "Crashed"
    assert all(e["payload"]["tick"] == tick.isoformat() for e in events.values())
    # One alert per schedule with a missed tick, listing it; none for the others.
    told = {name: missed_alerts(settings, name, seen[name]) for name in names}
    assert {name: len(alerts) for name, alerts in told.items()} == {
        "served": 0,
        "stranded": 1,
        "vanished": 1,
        "crashed": 1,
        "not-yet": 0,
        "paused": 0,
    }
    for name in ("stranded", "vanished", "crashed"):
        assert told[name][0]["facts"] == {"schedule": "once", "ticks": [show(tick)]}
        assert told[name][0]["title"] == f"{name}: missed tick(s) of schedule once"

    # The next check judges only what fell due since the first: nothing; no second report.
    # Nor the tick the paused automate did not run: resumed, its schedule changed after it.
    invoke_json(cli_env(settings), "resume", "paused", "--by", "ana")
    again = run_deployment(settings, CHECK, timeout=180, grace_seconds=GRACE)
    assert again.state is not None
    assert (again.state_name, again.state.message) == (
        "Completed",
        "0 due tick(s) checked, 0 missed",
    )
    # One tick, one event: its id is the one it had when each event was one tick.
    expected = {
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"automates:missed/{name}/once/{tick.isoformat()}"))
        for name in events
    }
    assert {e["id"] for e in events.values()} == expected
    assert {e["id"] for e in reported_by(settings, check, again)} == expected
    assert all(len(e["payload"]["ticks"]) == 1 for e in events.values())
    assert all(missed_alerts(settings, name, seen[name]) == told[name] for name in names)


def test_ticks_missed_while_the_check_was_down_are_each_reported_once(
    server: Settings, project: Project, worker: str
) -> None:
    nobody = f"nobody-{os.urandom(3).hex()}"  # a pool no worker serves: no tick of it runs
    shutil.copy(REPO / "flows" / "missed_runs.py", project.root / "flows" / "missed_runs.py")
    project.declare(
        automate("stalled", schedules=[{"slug": "often", "every": "5s"}], work_pool=nobody),
        the_check(worker),
    )
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    schedule = deployment(settings, "stalled").schedules[0]
    assert schedule.created is not None
    made = utc(schedule.updated or schedule.created)

    def due(start: datetime, end: datetime) -> list[datetime]:
        return ticks_between(schedule.schedule, max(start, made), end, limit=1000)

    seen = len(raised_alerts(settings, "stalled"))  # the session's store outlives each test
    first = run_deployment(settings, CHECK, timeout=180, grace_seconds=GRACE)

    # The check is down: one run of it crashes midway (so it judged nothing for certain),
    # then none runs while at least three more ticks fall due past the grace.
    check_id = api(settings, partial(PrefectClient.read_deployment_by_name, name=CHECK)).id

    async def crash_a_check(client: PrefectClient) -> FlowRun:
        run = await client.create_flow_run_from_deployment(
            check_id, state=Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1))
        )
        await client.set_flow_run_state(run.id, Running(), force=True)
        await client.set_flow_run_state(run.id, Crashed(message="the host died"), force=True)
        return await client.read_flow_run(run.id)

    crashed = api(settings, crash_a_check)
    assert crashed.state_name == "Crashed" and crashed.start_time is not None
    assert first.start_time is not None
    assert crashed.start_time > first.start_time  # it would have moved the watermark
    wait_for(
        lambda: len(due(judged_until(first), datetime.now(UTC) - timedelta(seconds=GRACE))) >= 3,
        120,
        "three ticks due while the check is down",
    )
    second = run_deployment(settings, CHECK, timeout=180, grace_seconds=GRACE)
    third = run_deployment(settings, CHECK, timeout=180, grace_seconds=GRACE)

    # Each run judges the ticks from where the previous Completed one stopped to its own
    # start less the grace: consecutive, never overlapping ranges.
    checks = [first, second, third]
    ends = [judged_until(check) for check in checks]
    windows = [due(made, ends[0]), due(ends[0], ends[1]), due(ends[1], ends[2])]
    assert len(windows[1]) >= 3  # the downtime's ticks
    for check, ticks in zip(checks, windows, strict=True):
        assert check.state is not None
        assert check.state.message == f"{len(ticks)} due tick(s) checked, {len(ticks)} missed"
        assert check.state_name == ("Findings" if ticks else "Completed")

    # One event per schedule and check that found any, listing exactly its range's ticks.
    def one_each() -> list[dict[str, Any]] | None:
        events = reported_by(settings, *checks)
        return events if len(events) == sum(1 for ticks in windows if ticks) else None

    events = wait_for(one_each, 60, "the checks' events")
    by_check = {
        check.id: [tick.isoformat() for tick in ticks]
        for check, ticks in zip(checks, windows, strict=True)
        if ticks
    }
    listed = {
        _emitted_by(event): [t["tick"] for t in event["payload"]["ticks"]] for event in events
    }
    assert listed == {f"prefect.flow-run.{run_id}": ticks for run_id, ticks in by_check.items()}
    downtime = next(e for e in events if _emitted_by(e) == f"prefect.flow-run.{second.id}")
    assert downtime["resource"]["prefect.resource.name"] == "stalled"
    assert downtime["payload"]["tick"] == windows[1][-1].isoformat()  # the newest
    assert downtime["payload"]["unjudged"] == 0
    assert all(t["state"] in (None, "Scheduled", "Late") for t in downtime["payload"]["ticks"])
    everything = [tick for ticks in listed.values() for tick in ticks]
    assert len(everything) == len(set(everything))  # no tick reported twice
    # One alert per check that found any, listing its range's ticks.
    assert [a["facts"] for a in missed_alerts(settings, "stalled", seen)] == [
        {"schedule": "often", "ticks": [show(tick) for tick in ticks]} for ticks in windows if ticks
    ]


def _emitted_by(event: dict[str, Any]) -> str:
    return next(
        related["prefect.resource.id"]
        for related in event["related"]
        if related["prefect.resource.role"] == "flow-run"
    )
