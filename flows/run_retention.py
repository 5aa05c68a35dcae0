"""flow-run-retention: delete finished runs of the automates older than the retention period.

The server's history grows by every run of every automate; past the retention period, finished
runs (completed, failed, cancelled, crashed) of deployments this tool manages are deleted
through the Prefect API, with their logs and task runs. Scheduled, pending, running and paused
runs, and runs of anything this tool did not deploy, are never touched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterTags,
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.states import Completed, State

from automates.registry.model import MANAGED_TAG
from tasks.reporting import publish_markdown

FINISHED = [StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED]
BATCH = 200


@flow(name="flow-run-retention")
async def flow_run_retention(keep_days: int = 30, dry_run: bool = False) -> State:
    """Delete finished flow runs that ended more than `keep_days` days ago.

    Args:
        keep_days: how many days of finished runs to keep.
        dry_run: count what would be deleted, delete nothing.
    """
    if keep_days < 1:
        raise ValueError("keep_days must be at least 1")
    logger = get_run_logger()
    cutoff = datetime.now(UTC) - timedelta(days=keep_days)
    old = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=FINISHED)),
        # Prefect's stubs name its own DateTime type; any aware datetime is accepted.
        end_time=FlowRunFilterEndTime(before_=cutoff),  # type: ignore[arg-type]
    )
    ours = DeploymentFilter(tags=DeploymentFilterTags(all_=[MANAGED_TAG]))
    deleted = 0
    async with get_client() as client:
        if dry_run:
            count = await client.count_flow_runs(flow_run_filter=old, deployment_filter=ours)
            summary = (
                f"would delete {count} finished runs that ended before {cutoff:%Y-%m-%d %H:%M} UTC"
            )
            logger.info(summary)
            return Completed(message=summary, data={"would_delete": count})
        while batch := await client.read_flow_runs(
            flow_run_filter=old, deployment_filter=ours, sort=FlowRunSort.END_TIME_DESC, limit=BATCH
        ):
            for run in batch:
                await client.delete_flow_run(run.id)
            deleted += len(batch)
            logger.info("deleted %d runs so far", deleted)
    summary = f"deleted {deleted} finished runs that ended before {cutoff:%Y-%m-%d %H:%M} UTC"
    logger.info(summary)
    publish_markdown(
        key="flow-run-retention",
        markdown=f"# Flow-run retention\n\n{summary} (kept {keep_days} days).\n",
        description=summary,
    )
    return Completed(message=summary, data={"deleted": deleted})
