"""Schedule forms, stable jitter and quiet hours on a real Prefect server and worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_API_URL, temporary_settings

from automates.guard.orchestrator import PrefectOrchestrator
from automates.guard.quiet_hours import DEFERRED_TAG, deferral
from automates.reconcile import reconcile
from automates.registry.loader import load_registry
from automates.registry.targets import automate_schedules
from automates.scheduling.preview import fire_times
from automates.scheduling.quiet_hours import QuietHours
from automates.settings import Settings
from automates.sync import sync
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import run_deployment, runs_of, store_rows, wait_for


def test_every_form_with_jitter_becomes_runs_at_the_previewed_times(
    server: Settings, project: Project
) -> None:
    one_off = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    project.declare(
        automate(
            "jittered",
            jitter_seconds=3600,
            schedules=[
                {"slug": "hourly", "cron": "0 * * * *", "timezone": "Europe/Paris"},
                {"slug": "ten-minutes", "every": "10m"},
                {"slug": "once", "at": one_off.isoformat()},
                {"slug": "mornings", "when": "every weekday at 9", "timezone": "Asia/Makassar"},
            ],
        )
    )
    settings = project.settings(server)
    first = asyncio.run(sync(settings, settings.database_url or ""))
    assert first.created == ["hello/jittered"]
    declared = load_registry(settings.registry_path).automates[0]
    schedules = {s.slug: s for s in automate_schedules(declared)}
    offsets = {slug: s.offset_seconds for slug, s in schedules.items()}
    assert offsets["once"] == 0 and 0 < offsets["ten-minutes"] <= 599
    assert 0 < offsets["hourly"] <= 3599 and 0 < offsets["mornings"] <= 3599

    def scheduled() -> list[FlowRun] | None:
        runs = [r for r in runs_of(settings, "hello/jittered") if r.auto_scheduled]
        # The scheduler has made at least three runs of each recurring schedule and the one-off.
        return (
            runs
            if len(runs) >= 10 and any(r.expected_start_time == one_off for r in runs)
            else None
        )

    runs = wait_for(scheduled, timeout=60, what="the scheduler to create the runs")
    times = {r.expected_start_time for r in runs}
    assert all(t is not None and t.microsecond == 0 for t in times)

    # The runs' scheduled times are the preview's, which carry each schedule's offset.
    start = min(t for t in times if t is not None)
    previewed: dict[str, set[datetime]] = {
        slug: set(asyncio.run(fire_times(schedule, start, 3)))
        for slug, schedule in schedules.items()
    }
    for slug, expected in previewed.items():
        assert expected <= times, slug
    assert times <= set().union(
        *(asyncio.run(fire_times(s, start, len(runs))) for s in schedules.values())
    )
    minute, second = divmod(offsets["hourly"], 60)
    assert all((t.minute, t.second) == (minute, second) for t in previewed["hourly"])
    assert [r for r in runs if r.expected_start_time == one_off]  # the one-off, exactly

    # Read back from the server, every form equals its declaration: nothing to change, no drift.
    again = asyncio.run(sync(settings, settings.database_url or ""))
    assert again.unchanged == ["hello/jittered"] and again.updated == {}
    assert not asyncio.run(reconcile(settings)).has_drift


def test_quiet_hours_skip_and_defer_real_runs(
    server: Settings, project: Project, worker: str
) -> None:
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    settings = project.declare_and_sync(
        server,
        automate(
            "hushed",
            kind="oneshot",
            schedules=[],
            work_pool=worker,
            quiet_hours={"start": "00:00", "end": "00:00", "action": "skip"},
        ),
        automate(
            "later",
            kind="oneshot",
            schedules=[],
            work_pool=worker,
            quiet_hours={**window, "action": "defer"},
        ),
    )

    skipped = run_deployment(settings, "hello/hushed")
    assert skipped.state_name == "Skipped"
    assert skipped.state is not None and skipped.state.is_completed()
    assert "quiet hours (always, UTC)" in (skipped.state.message or "")
    # Settled by the worker itself (decision 0052): no process started, journaled all the same.
    assert skipped.infrastructure_pid is None
    # The worker journals it just after the state (as a final-state hook does).
    [journaled] = wait_for(
        lambda: store_rows(
            server,
            "SELECT outcome, context FROM automates.execution_journal WHERE flow_run_id = :id",
            id=skipped.id,
        ),
        60,
        "the skipped run's journal row",
    )
    assert (journaled["outcome"], journaled["context"]["settled"]) == ("skipped", "before_process")

    # Defer: the run ends Deferred and leaves one run scheduled at the window's end.
    end = QuietHours.model_validate(window).window_end(now)
    assert end is not None
    deferred = run_deployment(settings, "hello/later")
    assert deferred.state_name == "Deferred"
    assert deferred.state is not None and end.strftime("%H:%M:%S") in (deferred.state.message or "")
    assert deferred.infrastructure_pid is None
    [waiting] = [r for r in runs_of(settings, "hello/later") if DEFERRED_TAG in r.tags]
    assert (waiting.state_name, waiting.expected_start_time) == ("Scheduled", end)
    assert waiting.parameters == deferred.parameters

    # Another tick of the same window asks again and gets the same run: one run per window.
    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
        assert PrefectOrchestrator().create_run(deferral(deferred, end)) == waiting.id
    assert [r.id for r in runs_of(settings, "hello/later") if DEFERRED_TAG in r.tags] == [
        waiting.id
    ]
