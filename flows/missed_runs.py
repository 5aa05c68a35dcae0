"""missed-run-check: the dead-man switch of every recurring automate.

For each active schedule, the newest tick due at least the grace ago must have run
(automates/scheduling/dead_man.py). Each one that did not is a finding: the run ends Completed,
named "Findings", with a table as an artifact, a warning line each and one Prefect event each
(`automates.automate.missed`). The event's id is derived from the automate, the schedule and
the tick, so the same missed tick seen by several checks is one event, and one alert.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterTags,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterExpectedStartTime,
)
from prefect.states import Completed, State

from automates.registry.model import MANAGED_TAG
from automates.scheduling.dead_man import Missed, describe, newest_due, why_missed
from automates.scheduling.misfire import show, utc
from automates.server.deployed import read_all
from automates.settings import Settings
from tasks.reporting import markdown_table, publish_markdown

RECURRING_TAG = "kind:recurring"


@flow(name="missed-run-check", log_prints=False)
async def missed_run_check(grace_seconds: int | None = None) -> State:
    """Report every active schedule of a recurring automate whose newest due tick did not run."""
    grace = timedelta(
        seconds=Settings().missed_run_grace_seconds if grace_seconds is None else grace_seconds
    )
    now = datetime.now(UTC)
    logger = get_run_logger()
    missed: list[Missed] = []
    checked = 0
    async with get_client() as client:
        for deployment in await _recurring_deployments(client):
            if deployment.paused:
                continue
            for schedule in deployment.schedules:
                since = schedule.updated or schedule.created
                if not schedule.active or since is None:
                    continue
                tick = newest_due(schedule.schedule, utc(since), now - grace)
                if tick is None:
                    continue  # nothing due since the schedule was (re)made
                checked += 1
                found = await _tick_missed(client, deployment, schedule.slug or "", tick)
                if found is not None:
                    missed.append(found)
    for one in missed:
        logger.warning("%s", describe(one))
        _announce(one)
    summary = f"{checked} due tick(s) checked, {len(missed)} missed"
    logger.info(summary)
    rows = [(m.automate, m.schedule, show(m.tick), m.state or "-", m.reason) for m in missed]
    publish_markdown(
        key="missed-run-check",
        markdown=f"# Missed runs\n\n{summary}.\n\n"
        + (markdown_table(("automate", "schedule", "tick", "run", "why"), rows) if rows else ""),
        description=summary,
    )
    data = {"checked": checked, "missed": [m.model_dump(mode="json") for m in missed]}
    if missed:
        return Completed(name="Findings", message=summary, data=data)
    return Completed(message=summary, data=data)


async def _recurring_deployments(client: Any) -> list[Any]:
    ours = DeploymentFilter(tags=DeploymentFilterTags(all_=[MANAGED_TAG, RECURRING_TAG]))
    return await read_all(client.read_deployments, deployment_filter=ours)


async def _tick_missed(
    client: Any, deployment: Any, schedule: str, tick: datetime
) -> Missed | None:
    """The finding for this tick, or None when one of its runs started."""
    near = timedelta(seconds=1)  # the API's times are exact; the filter's bounds inclusive
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
            expected_start_time=FlowRunFilterExpectedStartTime.model_validate(
                {"after_": tick - near, "before_": tick + near}
            ),
        ),
        limit=20,
    )
    runs = [r for r in runs if r.expected_start_time and utc(r.expected_start_time) == tick]
    pool = deployment.work_pool_name
    verdicts = [
        (why_missed(r.state_type.value if r.state_type else None, r.state_name, pool), r)
        for r in runs
    ] or [(why_missed(None, None, pool), None)]
    if any(reason is None for reason, _ in verdicts):
        return None
    reason, run = verdicts[0]
    return Missed(
        automate=deployment.name,
        schedule=schedule,
        tick=tick,
        state=run.state_name if run is not None else None,
        reason=reason or "",
    )


def _announce(missed: Missed) -> None:
    from prefect.events import emit_event

    emit_event(
        event="automates.automate.missed",
        resource={
            "prefect.resource.id": f"automates.automate.{missed.automate}",
            "prefect.resource.name": missed.automate,
        },
        payload={
            "schedule": missed.schedule,
            "tick": missed.tick.isoformat(),
            "state": missed.state,
            "reason": missed.reason,
        },
        # One event per missed tick, however many checks see it.
        id=uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"automates:missed/{missed.automate}/{missed.schedule}/{missed.tick.isoformat()}",
        ),
    )
