"""Misfire policies on a real server and a real worker: nothing runs while ticks pass, then
the worker takes the pool's runs again (its pool paused, then resumed: to Prefect, the same as
no worker and then one).

Late runs are the ones Prefect's scheduler made and the worker starts all at once when it
comes back; ticks that never became runs (a long server outage) are made here by deleting the
scheduler's runs of ticks already past, and runs older than the test are created through the
API as the scheduler creates them (its idempotency key): the guard reads all of them the same
way.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import DeploymentResponse

from automates.scheduling.misfire import utc
from automates.scheduling.preview import ticks_between
from automates.settings import Settings
from automates.sync import sync
from tests.fixtures.misfire import (
    GRACE,
    api,
    as_scheduler_makes,
    deployment,
    deployment_runs,
    ended_by,
    final,
    misfiring,
    worker_held_back,
)
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import store_rows, wait_for

POLICIES = {"missed-skip": "skip", "missed-once": "fire_once", "missed-catch-up": "catch_up"}
TAGS = {"fire_once": "misfire:fire-once", "catch_up": "misfire:catch-up"}


async def delete_runs(client: PrefectClient, *, ids: list[Any]) -> None:
    for run_id in ids:
        await client.delete_flow_run(run_id)


def outage_ended(
    settings: Settings, deployment_id: Any, back: datetime, policy: str
) -> list[FlowRun] | None:
    """All the runs of the deployment, once every run of a tick missed in the outage has
    ended: the ticks due before the worker came `back`, then all those due before the first
    run start (the recovery: a slow worker start lengthens the outage)."""
    runs = deployment_runs(settings, deployment_id)
    due = [r for r in runs if r.expected_start_time and utc(r.expected_start_time) <= back]
    starts = [utc(r.start_time) for r in runs if r.start_time]
    if not due or not all(final(r) for r in due) or not starts:
        return None
    recovered, grace = min(starts), timedelta(seconds=GRACE[policy])
    inside = [
        r for r in runs if r.expected_start_time and utc(r.expected_start_time) + grace < recovered
    ]
    return runs if all(final(r) for r in inside) else None


async def states_of(run_id: Any, client: PrefectClient) -> list[Any]:
    return sorted(await client.read_flow_run_states(run_id), key=lambda state: state.timestamp)


def journal_rows(settings: Settings, automate: str, count: int) -> list[dict[str, Any]] | None:
    """The automate's execution journal rows, once there are `count` of them."""
    rows = store_rows(
        settings,
        "SELECT outcome, context FROM automates.execution_journal WHERE automate = :name",
        name=automate,
    )
    return rows if len(rows) >= count else None


def from_scheduler(run: FlowRun) -> bool:
    return (run.idempotency_key or "").startswith("scheduled ")


def test_each_policy_after_a_worker_outage(server: Settings, project: Project) -> None:
    pool = f"outage-{os.urandom(3).hex()}"
    yearly = {"cron": "0 3 1 1 *"}  # no tick of its own during the test
    # The catch-up automate's own ticks: four one-offs, a few seconds apart, that all fall due
    # during the outage, and none after them, so the outage's ticks are the same however long
    # the worker takes to come back.
    first_tick = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    ticks = [first_tick + timedelta(seconds=6 * i) for i in range(4)]
    project.declare(
        misfiring("missed-skip", "skip", pool, yearly),
        misfiring("missed-once", "fire_once", pool, yearly),
        misfiring(
            "missed-catch-up",
            "catch_up",
            pool,
            *({"at": tick.isoformat().replace("+00:00", "Z")} for tick in ticks),
        ),
    )
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    with worker_held_back(server, settings, pool) as let_go:
        found = {name: deployment(settings, name) for name in POLICIES}
        since = utc(found["missed-catch-up"].schedules[0].updated or datetime.now(UTC))
        assert since < ticks[0], "the sync took longer than the ticks' head start"
        now = datetime.now(UTC).replace(microsecond=0)
        # Before the outage the scheduler had made runs that are now late.
        crafted = {
            "missed-skip": [now - timedelta(minutes=m) for m in (5, 4)],
            "missed-once": [now - timedelta(minutes=m) for m in (5, 4, 3)],
            "missed-catch-up": [
                since.replace(microsecond=0) - timedelta(seconds=s) for s in (40, 30)
            ],
        }
        for name, late in crafted.items():
            as_scheduler_makes(settings, found[name], late)

        # Nothing runs while the ticks pass: wait until the last one is past its grace.
        wake = ticks[-1] + timedelta(seconds=GRACE["catch_up"] + 1)
        time.sleep(max(0.0, (wake - datetime.now(UTC)).total_seconds()))
        # A long server outage leaves ticks that never became runs: drop the scheduler's runs
        # of the two most recent ticks (the two older ones stay late runs).
        never_created = set(ticks[2:])
        runs = deployment_runs(settings, found["missed-catch-up"].id)
        dropped = [r.id for r in runs if r.expected_start_time in never_created]
        api(settings, partial(delete_runs, ids=dropped))

        back = let_go()
        results = {
            name: wait_for(
                partial(outage_ended, settings, d.id, back, POLICIES[name]), 300, f"{name}'s outage"
            )
            for name, d in found.items()
        }
        for name, policy in POLICIES.items():
            check_outage(found[name], results[name], policy, crafted[name])
        # Under skip, the worker settled every late run itself: no process was started for
        # any (no pid), and the guard's hook journaled each as its process would have.
        missed = set(crafted["missed-skip"])
        settled = [r for r in results["missed-skip"] if r.expected_start_time in missed]
        assert len(settled) == len(missed), settled
        assert [r.infrastructure_pid for r in settled] == [None] * len(settled), settled
        # Taken out of the fetch: never submitted (no Pending), one state change each.
        for run in settled:
            history = api(settings, partial(states_of, run.id))
            names = [state.name for state in history]
            assert "Pending" not in names and names[-1] == "Skipped", names  # Scheduled, Late
        # The worker journals each just after its state, as a final-state hook does.
        journaled = wait_for(
            partial(journal_rows, server, "missed-skip", len(settled)), 60, "the journal rows"
        )
        assert sorted(row["outcome"] for row in journaled) == ["skipped"] * len(settled)
        assert all(row["context"]["settled"] == "before_process" for row in journaled)
        # A run that had to run got its process.
        kept = [r for r in results["missed-once"] if r.state_name == "Completed"]
        assert kept and all(r.infrastructure_pid for r in kept), kept
        # The catch-up ran the three most recent ticks: one the scheduler made, and the two
        # that never became runs, created by the guard.
        created = {
            utc(r.expected_start_time)
            for r in results["missed-catch-up"]
            if r.expected_start_time and TAGS["catch_up"] in r.tags
        }
        assert created == never_created

        # skip: nothing missed ran; a tick after the outage runs. It falls due once the
        # recovery's burst of late runs has ended: made during the outage, its run started in
        # that burst, and on a loaded machine a start more than the grace late is (rightly) a
        # misfire.
        upcoming = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
        as_scheduler_makes(settings, found["missed-skip"], [upcoming])
        [on_time] = wait_for(
            partial(ended_by, settings, found["missed-skip"].id, upcoming, since=back),
            120,
            "the tick after the outage",
        )
        assert (on_time.expected_start_time, on_time.state_name) == (upcoming, "Completed")


def check_outage(
    found: DeploymentResponse, runs: list[FlowRun], policy: str, crafted: list[datetime]
) -> None:
    """The outage's ticks: what ran and what was skipped follows the policy exactly."""
    grace = timedelta(seconds=GRACE[policy])
    recovered = min(utc(r.start_time) for r in runs if r.start_time)  # the first start after it
    # Every tick that fell due before the recovery: older runs, then the schedules' own
    # ticks, whether the scheduler made a run of them or not.
    real: set[datetime] = set()
    for schedule in found.schedules:
        assert schedule.updated is not None
        real |= set(
            ticks_between(schedule.schedule, utc(schedule.updated), recovered - grace, limit=100)
        )
    outage = sorted({*crafted, *real})
    assert len(outage) == len(crafted) + len(real) >= 2, outage
    expected = {"skip": [], "fire_once": outage[-1:], "catch_up": outage[-3:]}[policy]
    scheduled = {
        utc(r.expected_start_time) for r in runs if from_scheduler(r) and r.expected_start_time
    }
    created = [r for r in runs if set(r.tags) & set(TAGS.values())]

    for tick in outage:
        there = [r.state for r in runs if r.state and r.expected_start_time == tick]
        shown = (policy, tick, [(s.name, s.message) for s in there])
        if tick in expected:
            assert [s.name for s in there] == ["Completed"], shown
        else:
            assert all(s.name == "Skipped" for s in there), shown
            assert all(f"(misfire policy {policy}, started" in (s.message or "") for s in there)
    # Ticks of the outage that never became runs got one when they had to run, and only then.
    created = [r for r in created if utc(r.expected_start_time or recovered) + grace < recovered]
    assert sorted(utc(r.expected_start_time or recovered) for r in created) == [
        t for t in expected if t not in scheduled
    ]
    assert all(TAGS[policy] in r.tags for r in created)
    if policy == "catch_up":
        assert len(outage) > 3, "more than 3 missed, so some are skipped"


def test_a_catch_up_runs_oldest_first_under_forbid(server: Settings, project: Project) -> None:
    # The default concurrency policy skips a run that starts while another is active: the kept
    # runs of a catch-up, started together by the worker, must take their turns instead.
    pool = f"turns-{os.urandom(3).hex()}"
    slow = automate(
        "slow-catch-up",
        entrypoint=None,
        command=["scripts/nap.sh", "2"],
        family="exports",
        schedules=[{"slug": "tick", "cron": "0 3 1 1 *"}],
        misfire="catch_up",
        work_pool=pool,
    )
    project.declare(slow)
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    found = api(settings, lambda c: c.read_deployment_by_name("script/slow-catch-up"))
    now = datetime.now(UTC).replace(microsecond=0)
    ticks = [now - timedelta(minutes=m) for m in (4, 3, 2, 1)]

    with worker_held_back(server, settings, pool) as let_go:
        as_scheduler_makes(settings, found, ticks)
        let_go()
        runs = wait_for(partial(ended_by, settings, found.id, now), 120, "the catch-up")
    by_tick = sorted(runs, key=lambda r: r.expected_start_time or now)
    assert [r.state_name for r in by_tick] == ["Skipped", "Completed", "Completed", "Completed"]
    ends = [utc(r.end_time) for r in by_tick[1:] if r.end_time]
    # One after the other, oldest first: each naps 2 s after the one before it ended.
    assert all(later - earlier >= timedelta(seconds=2) for earlier, later in pairwise(ends)), ends
