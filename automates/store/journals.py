"""Statements on the journals: the execution journal and the append-only crash journal."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.dialects.postgresql import insert

from automates.store.schema import crash_journal, execution_journal


def record_execution(connection: Connection, row: dict[str, Any]) -> bool:
    """One row per run; False if the run was journaled already (nothing written)."""
    written = connection.execute(
        insert(execution_journal)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["flow_run_id"])
        .returning(execution_journal.c.id)
    ).first()
    return written is not None


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


def try_advisory_lock(connection: Connection, automate: str) -> bool:
    """Take the automate's session-level advisory lock if free (held until released or the
    connection closes, so a crashed run cannot keep it)."""
    return bool(
        connection.execute(
            text("SELECT pg_try_advisory_lock(hashtextextended('automates.run:' || :automate, 0))"),
            {"automate": automate},
        ).scalar()
    )


def release_advisory_lock(connection: Connection, automate: str) -> None:
    connection.execute(
        text("SELECT pg_advisory_unlock(hashtextextended('automates.run:' || :automate, 0))"),
        {"automate": automate},
    )
