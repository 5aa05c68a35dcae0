"""Statements on perimeters, runs, agent task runs and their output."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert

from automates.states import PerimeterKind, RunStatus, RunTrigger, TaskRunStatus
from automates.store.rows import StoredRow
from automates.store.schema import perimeters, runs, task_run_output, task_runs
from automates.store.spend import llm_committed


@dataclass(frozen=True)
class Perimeter(StoredRow):
    """A row of `perimeters`: the platform or one tenant, with the context a run loads."""

    id: str
    kind: PerimeterKind
    title: str
    machine: str | None
    client: str | None
    contact: str | None
    mailbox: str | None
    workdir: str  # the working tree a `code` task run may edit (absolute)
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ScopedRun(StoredRow):
    """A row of `runs`: one scoped execution over a perimeter."""

    id: UUID
    perimeter: str
    source: str
    trigger: RunTrigger
    title: str
    status: RunStatus
    flow_run_id: UUID | None
    created_at: datetime
    started_at: datetime
    ended_at: datetime | None  # None while running
    message: str | None


@dataclass(frozen=True)
class RecentRun(ScopedRun):
    """A run with how many agent task runs it delegated (`automates runs`)."""

    task_runs: int


@dataclass(frozen=True)
class TaskRun(StoredRow):
    """A row of `task_runs`: the execution unit delegated to an agent, one LLM CLI process
    per attempt."""

    id: UUID
    run_id: UUID | None  # the scoped run that delegated it, if any
    codename: str
    agent: str
    prompt: str
    template: str
    perimeter: str
    exit_criteria: str | None
    model: str | None
    dry_run: bool
    timeout_seconds: int
    max_budget_usd: Decimal | None
    status: TaskRunStatus
    attempts: int
    flow_run_id: UUID | None
    command: list[str] | None  # the exact argv run (or, for a dry run, that would have run)
    pid: int | None
    exit_code: int | None
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    terminal_reason: str | None
    error: str | None
    requested_at: datetime
    started_at: datetime | None  # the CLI process started
    heartbeat_at: datetime | None  # the last line of output
    ended_at: datetime | None


@dataclass(frozen=True)
class OutputLine(StoredRow):
    """A row of `task_run_output`: one line the CLI printed, in one attempt."""

    id: int
    task_run_id: UUID
    attempt: int
    line: str
    at: datetime


def upsert_perimeter(connection: Connection, **values: Any) -> None:
    statement = insert(perimeters).values(**values)
    changed = {k: statement.excluded[k] for k in values if k != "id"}
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["id"], set_={**changed, "updated_at": func.now()}
        )
    )


def ensure_platform_perimeter(connection: Connection, workdir: Path) -> None:
    """The `platform` perimeter (the layer itself), created once; later edits are kept."""
    connection.execute(
        insert(perimeters)
        .values(
            id="platform", kind=PerimeterKind.PLATFORM, title="The platform", workdir=str(workdir)
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


def read_perimeter(connection: Connection, perimeter: str) -> Perimeter | None:
    row = connection.execute(select(perimeters).where(perimeters.c.id == perimeter)).first()
    return None if row is None else Perimeter.from_row(row)


def all_perimeters(connection: Connection) -> list[Perimeter]:
    return [Perimeter.from_row(r) for r in connection.execute(select(perimeters).order_by("id"))]


def insert_run(connection: Connection, **values: Any) -> None:
    connection.execute(insert(runs).values(**values))


def finish_run(
    connection: Connection, run_id: UUID, status: RunStatus, message: str | None
) -> None:
    connection.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(status=status, message=message, ended_at=func.now())
    )


def recent_runs(connection: Connection, limit: int) -> list[RecentRun]:
    counts = (
        select(func.count())
        .where(task_runs.c.run_id == runs.c.id)
        .correlate(runs)
        .scalar_subquery()
        .label("task_runs")
    )
    rows = connection.execute(select(runs, counts).order_by(runs.c.created_at.desc()).limit(limit))
    return [RecentRun.from_row(r) for r in rows]


def read_run(connection: Connection, run_id: UUID) -> ScopedRun | None:
    row = connection.execute(select(runs).where(runs.c.id == run_id)).first()
    return None if row is None else ScopedRun.from_row(row)


def insert_task_run(connection: Connection, **values: Any) -> bool:
    """A pending task run; False if one with this id exists already (a request is idempotent)."""
    result = connection.execute(
        insert(task_runs).values(**values).on_conflict_do_nothing(index_elements=["id"])
    )
    return bool(result.rowcount)


def read_task_run(connection: Connection, task_run_id: UUID) -> TaskRun | None:
    row = connection.execute(select(task_runs).where(task_runs.c.id == task_run_id)).first()
    return None if row is None else TaskRun.from_row(row)


def lock_task_run(connection: Connection, task_run_id: UUID) -> TaskRun | None:
    row = connection.execute(
        select(task_runs).where(task_runs.c.id == task_run_id).with_for_update()
    ).first()
    return None if row is None else TaskRun.from_row(row)


def update_task_run(connection: Connection, task_run_id: UUID, **values: Any) -> None:
    connection.execute(update(task_runs).where(task_runs.c.id == task_run_id).values(**values))


def cancel_pending(connection: Connection, task_run_id: UUID, reason: str) -> bool:
    """Cancel a task run that has not started; False if it has (or has ended)."""
    result = connection.execute(
        update(task_runs)
        .where(task_runs.c.id == task_run_id, task_runs.c.status == TaskRunStatus.PENDING)
        .values(status=TaskRunStatus.CANCELLED, ended_at=func.now(), error=reason)
    )
    return bool(result.rowcount)


def lock_agent_budget(connection: Connection, agent: str) -> None:
    """Serialise budget checks of one agent until the end of the transaction."""
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"agent-budget:{agent}"}
    )


def committed_spend(connection: Connection, agent: str, now: datetime) -> Decimal:
    """Dollars the agent has spent or reserved over the last 24 hours: the cost of task runs
    that ended in that window, plus the per-run budget of those running (their worst case),
    plus its LLM facade calls of the window (decision 0046)."""
    since = now - timedelta(hours=24)
    spent = select(func.coalesce(func.sum(task_runs.c.cost_usd), 0)).where(
        task_runs.c.agent == agent, task_runs.c.ended_at >= since
    )
    reserved = select(func.coalesce(func.sum(task_runs.c.max_budget_usd), 0)).where(
        task_runs.c.agent == agent,
        task_runs.c.status == TaskRunStatus.RUNNING,
        task_runs.c.dry_run.is_(False),
    )
    return (
        Decimal(connection.execute(spent).scalar_one())
        + Decimal(connection.execute(reserved).scalar_one())
        + llm_committed(connection, agent, since)
    )


def append_output(connection: Connection, task_run_id: UUID, attempt: int, line: str) -> None:
    connection.execute(
        insert(task_run_output).values(task_run_id=task_run_id, attempt=attempt, line=line)
    )
    connection.execute(
        update(task_runs).where(task_runs.c.id == task_run_id).values(heartbeat_at=func.now())
    )


def output_after(
    connection: Connection, task_run_id: UUID, after_id: int, limit: int = 1000
) -> list[OutputLine]:
    rows = connection.execute(
        select(task_run_output)
        .where(task_run_output.c.task_run_id == task_run_id, task_run_output.c.id > after_id)
        .order_by(task_run_output.c.id)
        .limit(limit)
    )
    return [OutputLine.from_row(r) for r in rows]


def stuck_task_runs(connection: Connection, now: datetime, stuck_seconds: int) -> list[TaskRun]:
    """Task runs that nobody is moving: pending without a start for `stuck_seconds`, or running
    with no output for `stuck_seconds` past their own timeout (the process that ran them is
    gone). Locked, skipping rows another detector holds."""
    threshold = now - timedelta(seconds=stuck_seconds)
    last_sign = func.coalesce(task_runs.c.heartbeat_at, task_runs.c.started_at)
    rows = connection.execute(
        select(task_runs)
        .where(
            or_(
                and_(
                    task_runs.c.status == TaskRunStatus.PENDING,
                    task_runs.c.requested_at < threshold,
                ),
                and_(
                    task_runs.c.status == TaskRunStatus.RUNNING,
                    last_sign
                    < threshold - func.make_interval(0, 0, 0, 0, 0, 0, task_runs.c.timeout_seconds),
                ),
            )
        )
        .order_by(task_runs.c.requested_at)
        .with_for_update(skip_locked=True)
    )
    return [TaskRun.from_row(r) for r in rows]


def task_runs_in_flight(connection: Connection, agent: str, but: UUID | None = None) -> int:
    """How many of the agent's task runs are pending or running (other than `but`)."""
    query = select(func.count()).where(
        task_runs.c.agent == agent,
        task_runs.c.status.in_([TaskRunStatus.PENDING.value, TaskRunStatus.RUNNING.value]),
    )
    if but is not None:
        query = query.where(task_runs.c.id != but)
    return int(connection.execute(query).scalar_one())


def final_answer(connection: Connection, task_run_id: UUID) -> str | None:
    """The answer of the task run's last attempt: the `result` of its CLI's final event (the
    stream-json `result` event), None if it printed none."""
    rows = connection.execute(
        select(task_run_output.c.line)
        .where(task_run_output.c.task_run_id == task_run_id)
        .order_by(task_run_output.c.id.desc())
        .limit(20)  # the result event is the last line, or close to it
    )
    for (line,) in rows:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "result":
            answer = event.get("result")
            return answer if isinstance(answer, str) else None
    return None
