"""flow-run-retention: delete finished flow runs older than the retention period.

The server's history grows by every run of every automate; past the retention period, finished
runs (completed, failed, cancelled, crashed) are deleted through the Prefect API, with their
logs and task runs. Scheduled, pending, running and paused runs are never touched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort

FINISHED = [StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED]
BATCH = 200


@flow(name="flow-run-retention")
async def flow_run_retention(keep_days: int = 30, dry_run: bool = False) -> dict[str, int]:
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
        end_time=FlowRunFilterEndTime(before_=cutoff),
    )
    deleted = 0
    async with get_client() as client:
        if dry_run:
            count = await client.count_flow_runs(flow_run_filter=old)
            logger.info("%d finished runs ended before %s (dry run)", count, cutoff.isoformat())
            return {"would_delete": count, "deleted": 0}
        while batch := await client.read_flow_runs(
            flow_run_filter=old, sort=FlowRunSort.END_TIME_DESC, limit=BATCH
        ):
            for run in batch:
                await client.delete_flow_run(run.id)
            deleted += len(batch)
            logger.info("deleted %d runs so far", deleted)
    logger.info("deleted %d finished runs that ended before %s", deleted, cutoff.isoformat())
    return {"would_delete": deleted, "deleted": deleted}
