"""store-retention: delete what the layer keeps past its time, in small batches.

Each rule of automates/store/retention.py (execution journal, agents' tool calls, task-run
output, task runs and scoped runs, browser-job payloads and results, browser jobs, second-factor
codes, delivered alerts) takes its rows oldest first, a batch per transaction, so no lock is
held longer than one batch. The run stops at `max_seconds` and the next run goes on; a rule
left unfinished is a finding. The crash journal is never touched (it is append-only).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from automates.settings import Settings
from automates.store.engine import transaction
from automates.store.retention import apply, due
from blocks.store import store_engine
from tasks.reporting import markdown_table, publish_markdown


@flow(name="store-retention")
def store_retention(dry_run: bool = False, max_seconds: int = 600) -> State:
    """Delete (or purge) every row past its retention.

    Args:
        dry_run: count what would go, change nothing.
        max_seconds: stop starting batches after this long; the next run goes on.
    """
    logger = get_run_logger()
    retention = Settings().retention
    engine = store_engine()
    now = datetime.now(UTC)
    try:
        if dry_run:
            with transaction(engine) as connection:
                applied = due(connection, retention, now)
        else:
            applied = apply(engine, retention, now, deadline=time.monotonic() + max_seconds)
    finally:
        engine.dispose()
    verb = "would go" if dry_run else "went"
    total = sum(a.rows for a in applied)
    longest = max((a.longest_batch_ms for a in applied), default=0.0)
    summary = f"{total} rows {verb} past their retention; longest batch {longest:.0f} ms"
    unfinished = [a for a in applied if not a.finished]
    logger.info(summary)
    rows = [
        (
            a.rule,
            a.table,
            f"{a.cutoff:%Y-%m-%d %H:%M}",
            a.rows,
            a.batches,
            f"{a.longest_batch_ms:.0f}",
            a.stopped_by or "",
        )
        for a in applied
    ]
    publish_markdown(
        key="store-retention",
        markdown=f"# Store retention\n\n{summary}.\n\n"
        + markdown_table(
            ("rule", "table", "older than", "rows", "batches", "longest batch ms", "stopped by"),
            rows,
        ),
        description=summary,
    )
    data = [a.as_dict() for a in applied]
    if unfinished:
        left = "; ".join(f"{a.rule}: stopped by {a.stopped_by}" for a in unfinished)
        return Completed(name="Findings", message=f"{summary}; rows left: {left}", data=data)
    return Completed(message=summary, data=data)
