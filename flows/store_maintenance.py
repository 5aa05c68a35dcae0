"""store-maintenance: keep the store's tables lean and its schema current.

Light daily run: ANALYZE (fresh planner statistics). Deep weekly run: VACUUM (ANALYZE), which
also reclaims dead rows left by updates and deletes. Either way the run checks that the store's
schema is at the newest migration and publishes table sizes as an artifact.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from blocks.store import store_engine
from tasks.reporting import markdown_table, publish_markdown
from tasks.store import maintain_tables, schema_revision


@flow(name="store-maintenance")
def store_maintenance(deep: bool = False) -> State:
    """Analyze (or, when deep, vacuum) every store table; check the migration level.

    Args:
        deep: VACUUM (ANALYZE) instead of ANALYZE alone.
    """
    logger = get_run_logger()
    engine = store_engine()
    try:
        current, head = schema_revision(engine)
        tables = maintain_tables(engine, deep=deep)
    finally:
        engine.dispose()
    rows = [(t.table, t.live_rows, t.dead_rows, t.size) for t in tables]
    verb = "vacuumed and analyzed" if deep else "analyzed"
    summary = f"{verb} {len(tables)} tables; schema at {current} (newest {head})"
    logger.info(summary)
    publish_markdown(
        key="store-maintenance",
        markdown=f"# Store maintenance\n\n{summary}.\n\n"
        + markdown_table(("table", "live rows", "dead rows", "size"), rows),
        description=summary,
    )
    if current != head:
        return Failed(message=f"store schema at {current}, expected {head}: run `automates up`")
    return Completed(message=summary, data=[t.as_dict() for t in tables])
