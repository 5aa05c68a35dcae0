"""run-watch: no run of the layer stays Pending, or ends, unseen.

Every few minutes it re-submits (once) a run that a worker took but never started, ends one
that still does not start, and journals every run that reached a final state without the
guard's journal row: a run whose process was killed (Crashed by Prefect's heartbeat
automation), one whose final state was written while the store was down, one its worker
refused (automates/guard/settle.py). Each is a finding, with one Prefect event per run
(`automates.run.resubmitted` / `.crashed` / `.journaled`) for automations to notify on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_client, get_run_logger
from prefect.events import emit_event
from prefect.states import Completed, State

from automates.guard.recording import store
from automates.guard.settle import settle
from automates.settings import Settings
from tasks.reporting import markdown_table, publish_markdown

# Runs that ended earlier than this are left to the journals' own history.
LOOKBACK = timedelta(hours=24)


@flow(name="run-watch", log_prints=False)
async def run_watch(pending_grace_seconds: int | None = None) -> State:
    """Settle stalled runs and journal the ones that ended outside the guard."""
    settings = Settings()
    grace = timedelta(
        seconds=settings.run_pending_grace_seconds
        if pending_grace_seconds is None
        else pending_grace_seconds
    )
    logger = get_run_logger()
    async with get_client() as client:
        settled = await settle(
            client,
            store(settings.store_block),
            datetime.now(UTC),
            pending_grace=grace,
            lookback=LOOKBACK,
        )
    for item in settled:
        logger.warning(
            "run %s of %s %s: %s", item.flow_run_id, item.automate, item.action, item.reason
        )
        emit_event(
            event=f"automates.run.{item.action}",
            resource={
                "prefect.resource.id": f"prefect.flow-run.{item.flow_run_id}",
                "automates.automate": item.automate,
            },
            payload={"reason": item.reason},
        )
    summary = ", ".join(
        f"{sum(1 for s in settled if s.action == action)} {action}"
        for action in ("resubmitted", "crashed", "journaled")
    )
    logger.info(summary)
    rows = [(s.flow_run_id, s.automate, s.action, s.reason) for s in settled]
    publish_markdown(
        key="run-watch",
        markdown=f"# Run watch\n\n{summary}.\n\n"
        + (markdown_table(("flow run", "automate", "action", "why"), rows) if rows else ""),
        description=summary,
    )
    data = [
        {
            "flow_run_id": str(s.flow_run_id),
            "automate": s.automate,
            "action": s.action,
            "reason": s.reason,
        }
        for s in settled
    ]
    if settled:
        return Completed(name="Findings", message=summary, data=data)
    return Completed(message=summary, data=data)
