"""missed-run-check: the dead-man switch of every recurring automate.

For each active schedule, every tick due at least the grace ago that the previous completed
check did not judge must have run (automates/scheduling/dead_man.py): ticks that fell due
while the check itself was down are judged when it runs again, each by one check only. Each
schedule with ticks that did not run is a finding: the run ends Completed, named "Findings",
with a table as an artifact, a warning line and one Prefect event
(`automates.automate.missed`) per schedule, listing its missed ticks.

The watermark is Prefect's own record of this deployment's runs: the newest Completed
(or Findings) run's start time less its grace is where it stopped judging; this run judges
up to its own start time less its grace (docs/decisions/0026-dead-man-check.md).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterTags,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.context import FlowRunContext
from prefect.states import Completed, State

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.registry.model import MANAGED_TAG
from automates.scheduling.dead_man import (
    Due,
    Missed,
    describe,
    due_ticks,
    judge,
    unjudged_text,
)
from automates.scheduling.misfire import show, utc
from automates.server.deployed import read_all
from automates.settings import Settings
from automates.store.engine import transaction
from blocks.store import store_engine
from tasks.reporting import markdown_table, publish_markdown

RECURRING_TAG = "kind:recurring"
# Completed runs of the check read for the watermark: the newest start is not always the
# furthest judged (a manual run with a short grace), so a few are compared.
PREVIOUS_RUNS = 10


@flow(name="missed-run-check", log_prints=False)
async def missed_run_check(grace_seconds: int | None = None) -> State:
    """Report every tick of an active schedule of a recurring automate that fell due since
    the previous check and did not run."""
    logger = get_run_logger()
    missed: list[Missed] = []
    checked = unjudged = 0
    async with get_client() as client:
        this = await _this_run(client)
        until = _stops_at(this, grace_seconds)
        watermark = await _previous_watermark(client, this)
        for deployment in await _recurring_deployments(client):
            if deployment.paused:
                continue
            for schedule in deployment.schedules:
                since = schedule.updated or schedule.created
                if not schedule.active or since is None:
                    continue
                due = due_ticks(
                    schedule.schedule, since=utc(since), until=until, judged_until=watermark
                )
                checked += len(due.ticks)
                unjudged += due.unjudged
                if not due.ticks:
                    continue
                found = await _schedule_missed(client, deployment, schedule.slug or "", due)
                if found is not None:
                    missed.append(found)
    for one in missed:
        logger.warning("%s", describe(one))
        _report(one)
    if missed:
        await asyncio.to_thread(_alert, missed)
    ticks = sum(len(m.misses) for m in missed)
    summary = f"{checked} due tick(s) checked, {ticks} missed"
    if unjudged:
        summary += f", {unjudged_text(unjudged)} before the look-back not judged"
    logger.info("%s (ticks due from %s to %s)", summary, _shown(watermark), show(until))
    rows = [
        (m.automate, m.schedule, show(t.tick), t.state or "-", t.reason)
        for m in missed
        for t in m.misses
    ]
    rows += [
        (m.automate, m.schedule, unjudged_text(m.unjudged), "-", "before the look-back")
        for m in missed
        if m.unjudged
    ]
    publish_markdown(
        key="missed-run-check",
        markdown=f"# Missed runs\n\n{summary}, ticks due from {_shown(watermark)} "
        f"to {show(until)}.\n\n"
        + (markdown_table(("automate", "schedule", "tick", "run", "why"), rows) if rows else ""),
        description=summary,
    )
    data = {
        "checked": checked,
        "judged_from": watermark.isoformat() if watermark else None,
        "judged_until": until.isoformat(),
        "missed": [m.model_dump(mode="json") for m in missed],
        "unjudged": unjudged,
    }
    if missed:
        return Completed(name="Findings", message=summary, data=data)
    return Completed(message=summary, data=data)


def _report(missed: Missed) -> None:
    """Tell the world about one schedule's missed ticks: one event per schedule and check."""
    from prefect.events import emit_event

    newest = missed.newest
    ticks = [t.tick.isoformat() for t in missed.misses]
    emit_event(
        event="automates.automate.missed",
        resource={
            "prefect.resource.id": f"automates.automate.{missed.automate}",
            "prefect.resource.name": missed.automate,
        },
        payload={
            "schedule": missed.schedule,
            "tick": newest.tick.isoformat(),  # the newest, as its state and reason
            "state": newest.state,
            "reason": newest.reason,
            "ticks": [
                {"tick": tick, "state": t.state, "reason": t.reason}
                for tick, t in zip(ticks, missed.misses, strict=True)
            ],
            "unjudged": missed.unjudged,
        },
        # The same ticks found twice (a check that died after emitting, judged again) are
        # one event; a single tick keeps the id it had when one event was one tick.
        id=uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"automates:missed/{missed.automate}/{missed.schedule}/{','.join(ticks)}",
        ),
    )


def _alert(missed: list[Missed]) -> None:
    """One alert per schedule with missed ticks (de-duplicated by the deliverer while the
    condition lasts; the automate's next good run resolves it)."""
    engine = store_engine()
    try:
        with transaction(engine) as connection:
            for one in missed:
                ticks = [show(miss.tick) for miss in one.misses]
                alert = catalog.missed_ticks(one.automate, one.schedule, ticks, one.newest.reason)
                raise_alert(connection, alert)
    finally:
        engine.dispose()


async def _this_run(client: Any) -> FlowRun:
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None, "runs only as a flow"
    run: FlowRun = await client.read_flow_run(context.flow_run.id)
    return run


def _stops_at(run: FlowRun, grace_seconds: int | None) -> datetime:
    """Where a run of the check stops judging: its start, less its grace. From the run's own
    record, so the next check computes the same moment from the API."""
    if grace_seconds is None:
        grace_seconds = Settings().missed_run_grace_seconds
    started = run.start_time or run.expected_start_time
    assert started is not None, f"flow run {run.id} has no start time"
    return utc(started) - timedelta(seconds=grace_seconds)


async def _previous_watermark(client: Any, this: FlowRun) -> datetime | None:
    """How far the previous Completed (or Findings) runs of this deployment judged; None
    outside a deployment or before the first one. A Failed, Crashed or TimedOut check may
    have stopped midway: it moves nothing, and its ticks are judged again."""
    if this.deployment_id is None:
        return None
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[this.deployment_id]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED])),
        ),
        sort=FlowRunSort.START_TIME_DESC,
        limit=PREVIOUS_RUNS,
    )
    ends = [
        _stops_at(run, (run.parameters or {}).get("grace_seconds"))
        for run in runs
        if run.id != this.id and run.start_time is not None
    ]
    return max(ends, default=None)


async def _recurring_deployments(client: Any) -> list[Any]:
    ours = DeploymentFilter(tags=DeploymentFilterTags(all_=[MANAGED_TAG, RECURRING_TAG]))
    return await read_all(client.read_deployments, deployment_filter=ours)


async def _schedule_missed(client: Any, deployment: Any, schedule: str, due: Due) -> Missed | None:
    """The finding for these ticks of one schedule, or None when each of them has a run that
    started. One read of the deployment's runs (page by page) for all of them."""
    near = timedelta(seconds=1)  # the API's times are exact; the filter's bounds inclusive
    runs = await read_all(
        client.read_flow_runs,
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
            expected_start_time=FlowRunFilterExpectedStartTime.model_validate(
                {"after_": due.ticks[0] - near, "before_": due.ticks[-1] + near}
            ),
        ),
    )  # in the server's default order, by id: stable from page to page
    states: dict[datetime, list[tuple[str | None, str | None]]] = defaultdict(list)
    for run in runs:
        if run.expected_start_time is not None:
            kind = run.state_type.value if run.state_type else None
            states[utc(run.expected_start_time)].append((kind, run.state_name))
    pool = deployment.work_pool_name
    misses = [m for tick in due.ticks if (m := judge(tick, states[tick], pool)) is not None]
    if not misses:
        return None
    return Missed(
        automate=deployment.name, schedule=schedule, misses=tuple(misses), unjudged=due.unjudged
    )


def _shown(moment: datetime | None) -> str:
    return show(moment) if moment is not None else "the start of the look-back"
