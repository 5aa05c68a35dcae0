"""Statements on the journals: the execution journal and the append-only crash journal."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert

from automates.store.schema import crash_journal, execution_journal


def record_execution(connection: Connection, row: dict[str, Any]) -> None:
    """One row per run; a run's row is written once (a replayed hook changes nothing)."""
    connection.execute(
        insert(execution_journal)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["flow_run_id"])
    )


def record_crash(connection: Connection, row: dict[str, Any]) -> None:
    connection.execute(insert(crash_journal).values(**row))


def recent_executions(
    connection: Connection, automate: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    query = select(execution_journal).order_by(execution_journal.c.finished_at.desc()).limit(limit)
    if automate is not None:
        query = query.where(execution_journal.c.automate == automate)
    return [dict(row._mapping) for row in connection.execute(query)]


def recent_crashes(
    connection: Connection, automate: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(crash_journal).order_by(crash_journal.c.id.desc()).limit(limit)
    if automate is not None:
        query = query.where(crash_journal.c.automate == automate)
    return [dict(row._mapping) for row in connection.execute(query)]
