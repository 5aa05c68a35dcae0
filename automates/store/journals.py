"""Statements on the journals: the execution journal and the append-only crash journal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Connection, Select, Table, select, text
from sqlalchemy.dialects.postgresql import insert

from automates.audit.model import Repair, Run
from automates.states import BreakerState, RetryOutcome, RunOutcome
from automates.store.rows import StoredRow, column_values
from automates.store.schema import crash_journal, execution_journal


@dataclass(frozen=True)
class Execution:
    """A row of the execution journal: one guarded run, written when it ended."""

    automate: str
    flow_run_id: UUID
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    outcome: RunOutcome
    message: str | None
    attempts: int
    exit_code: int | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    principal: str | None = None  # who asked for it; None in rows from before it was kept


@dataclass(frozen=True)
class Crash:
    """A row of the crash journal: one failed attempt of a run."""

    automate: str
    flow_run_id: UUID
    attempt: int
    error_class: str
    message: str
    traceback: str
    retry_outcome: RetryOutcome
    breaker_state: BreakerState | None  # the automate's breaker after this failure
    fix_applied: str | None = None
    occurred_at: datetime | None = None  # None: when it is written


@dataclass(frozen=True)
class _JournalId(StoredRow):
    """The id the journal gave a row, read back with it. It is the table's first column, so a
    row class names this base last: a dataclass takes its bases' fields from the last base to
    the first."""

    id: int


@dataclass(frozen=True)
class JournaledExecution(Execution, _JournalId):
    """An `Execution` as journaled, read back: with its id, its columns in the table's order."""


@dataclass(frozen=True)
class JournaledCrash(_JournalId):
    """A `Crash` as journaled, read back: with its id and when it was written, its columns in
    the table's order."""

    automate: str
    flow_run_id: UUID
    attempt: int
    occurred_at: datetime
    error_class: str
    message: str
    traceback: str
    fix_applied: str | None
    retry_outcome: RetryOutcome
    breaker_state: BreakerState | None  # the automate's breaker after this failure


def record_execution(connection: Connection, row: Execution) -> bool:
    """One row per run; False if the run was journaled already (nothing written)."""
    written = connection.execute(
        insert(execution_journal)
        .values(**column_values(row))
        .on_conflict_do_nothing(index_elements=["flow_run_id"])
        .returning(execution_journal.c.id)
    ).first()
    return written is not None


def record_crash(connection: Connection, row: Crash) -> None:
    values = column_values(row)
    if row.occurred_at is None:
        del values["occurred_at"]  # the table's default: now()
    connection.execute(insert(crash_journal).values(**values))


def journaled_runs(connection: Connection, flow_run_ids: list[UUID]) -> set[UUID]:
    """Which of these flow runs the execution journal holds."""
    rows = connection.execute(
        select(execution_journal.c.flow_run_id).where(
            execution_journal.c.flow_run_id.in_(flow_run_ids)
        )
    )
    return set(rows.scalars())


def recent_executions(
    connection: Connection, automate: str | None = None, limit: int = 20
) -> list[JournaledExecution]:
    newest = _newest(execution_journal, execution_journal.c.finished_at, automate, limit)
    return [JournaledExecution.from_row(row) for row in connection.execute(newest)]


def recent_crashes(
    connection: Connection, automate: str | None = None, limit: int = 50
) -> list[JournaledCrash]:
    newest = _newest(crash_journal, crash_journal.c.id, automate, limit)
    return [JournaledCrash.from_row(row) for row in connection.execute(newest)]


def runs_since(connection: Connection, since: datetime) -> list[Run]:
    """What the journal audit reads of every run that ended since `since`: automate, end,
    duration and outcome (not the steps and context, which it does not need)."""
    journal = execution_journal.c
    rows = connection.execute(
        select(journal.automate, journal.finished_at, journal.duration_seconds, journal.outcome)
        .where(journal.finished_at >= since)
        .order_by(journal.finished_at)
    )
    return [
        Run(automate, end, duration, RunOutcome(outcome))
        for automate, end, duration, outcome in rows
    ]


def repairs_since(connection: Connection, since: datetime) -> list[Repair]:
    """Every failed attempt since `since` on which self-repair acted or refused to."""
    crash = crash_journal.c
    rows = connection.execute(
        select(crash.automate, crash.occurred_at, crash.fix_applied)
        .where(crash.occurred_at >= since, crash.fix_applied.is_not(None))
        .order_by(crash.occurred_at)
    )
    return [Repair(automate, at, fix) for automate, at, fix in rows]


def _newest(journal: Table, order: Column[Any], automate: str | None, limit: int) -> Select[Any]:
    """A journal's `limit` newest rows by `order`, of one automate or of all."""
    query = select(journal).order_by(order.desc()).limit(limit)
    if automate is not None:
        query = query.where(journal.c.automate == automate)
    return query


# Advisory lock keys: a 64-bit hash of "automates.<purpose>:<automate>". Purposes: "run" (the
# lock of an automate that touches money or durable data), "active" (the run that holds the
# automate's concurrency slot), "waiting" (the one run queue_one lets wait for it).
_KEY = "hashtextextended('automates.' || :purpose || ':' || :automate, 0)"


def try_advisory_lock(connection: Connection, automate: str, purpose: str = "run") -> bool:
    """Take one of the automate's session-level advisory locks if free (held until released or
    the connection closes, so a crashed run cannot keep it)."""
    return bool(
        connection.execute(
            text(f"SELECT pg_try_advisory_lock({_KEY})"),
            {"automate": automate, "purpose": purpose},
        ).scalar()
    )


def release_advisory_lock(connection: Connection, automate: str, purpose: str = "run") -> None:
    connection.execute(
        text(f"SELECT pg_advisory_unlock({_KEY})"),
        {"automate": automate, "purpose": purpose},
    )


def name_session(connection: Connection, name: str) -> None:
    """Set the session's application_name, which `lock_holder` reads back (at most 63 bytes)."""
    connection.execute(text("SELECT set_config('application_name', :name, false)"), {"name": name})


def lock_holder(connection: Connection, automate: str, purpose: str) -> str | None:
    """The application_name of the session holding the automate's advisory lock ('' if it
    set none), or None when nobody holds it. A bigint key shows in pg_locks as classid (high
    32 bits) and objid (low 32 bits), with objsubid 1."""
    row = connection.execute(
        text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            f" AND ((l.classid::bigint << 32) | l.objid::bigint) = {_KEY}"
        ),
        {"automate": automate, "purpose": purpose},
    ).first()
    return None if row is None else str(row[0] or "")
