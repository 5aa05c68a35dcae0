"""Every statement on the browser job and mailbox tables.

A job moves queued → running (claimed by exactly one worker) → done | failed. The claim is
a single conditional UPDATE: of two workers handed the same job, one gets the row and the
other gets nothing, whatever Prefect did. On the server side, the browser-job-watch automate
ends what no worker will: a running job whose worker died becomes `lost`, a queued job whose
flow run ended before any claim becomes `failed` (automates/browser/watch.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, func, null, select, update

from automates.states import BrowserJobStatus
from automates.store.schema import browser_jobs, browser_mailbox

# What a worker may report at the end of a job; `lost` is only ever the server side's verdict.
TERMINAL = (BrowserJobStatus.DONE, BrowserJobStatus.FAILED)
UNENDED = (BrowserJobStatus.QUEUED, BrowserJobStatus.RUNNING)


def insert_job(
    connection: Connection, kind: str, payload: dict[str, Any], timeout_seconds: int
) -> uuid.UUID:
    job_id = uuid.uuid4()
    connection.execute(
        browser_jobs.insert().values(
            id=job_id, kind=kind, payload=payload, timeout_seconds=timeout_seconds
        )
    )
    return job_id


def payloads_after(
    connection: Connection, after: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    """The next `limit` jobs' id, kind and payload by id, locked until the transaction ends
    (resealing payload secrets, automates/browser/payload_secrets.py)."""
    query = select(browser_jobs.c.id, browser_jobs.c.kind, browser_jobs.c.payload)
    if after is not None:
        query = query.where(browser_jobs.c.id > after)
    rows = connection.execute(query.order_by(browser_jobs.c.id).limit(limit).with_for_update())
    return [dict(row._mapping) for row in rows]


def set_payload(connection: Connection, job_id: uuid.UUID, payload: dict[str, Any]) -> None:
    connection.execute(
        update(browser_jobs).where(browser_jobs.c.id == job_id).values(payload=payload)
    )


def attach_flow_run(connection: Connection, job_id: uuid.UUID, flow_run_id: uuid.UUID) -> None:
    connection.execute(
        update(browser_jobs).where(browser_jobs.c.id == job_id).values(flow_run_id=flow_run_id)
    )


def delete_queued(connection: Connection, job_id: uuid.UUID) -> None:
    """Undo an enqueue whose flow run could not be created."""
    connection.execute(
        browser_jobs.delete().where(
            browser_jobs.c.id == job_id, browser_jobs.c.status == BrowserJobStatus.QUEUED
        )
    )


def claim_job(connection: Connection, job_id: uuid.UUID, host: str) -> dict[str, Any] | None:
    """Move a queued job to running for `host`; None when it is not queued (already claimed)."""
    row = connection.execute(
        update(browser_jobs)
        .where(browser_jobs.c.id == job_id, browser_jobs.c.status == BrowserJobStatus.QUEUED)
        .values(
            status=BrowserJobStatus.RUNNING,
            host=host,
            attempts=browser_jobs.c.attempts + 1,
            started_at=func.now(),
        )
        .returning(browser_jobs.c.kind, browser_jobs.c.payload, browser_jobs.c.timeout_seconds)
    ).first()
    return dict(row._mapping) if row else None


def finish_job(
    connection: Connection,
    job_id: uuid.UUID,
    host: str,
    status: str,
    result: dict[str, Any] | None,
    error: str | None,
    counters: dict[str, int],
) -> bool:
    """Record the end of a running job claimed by `host`; False when it was not."""
    done = connection.execute(
        update(browser_jobs)
        .where(
            browser_jobs.c.id == job_id,
            browser_jobs.c.status == BrowserJobStatus.RUNNING,
            browser_jobs.c.host == host,
        )
        .values(
            status=status,
            # SQL NULL, not the JSON value null: only a done job has a result.
            result=result if status == BrowserJobStatus.DONE and result is not None else null(),
            error=error,
            counters=counters,
            finished_at=func.now(),
        )
    )
    return done.rowcount == 1


def read_job(connection: Connection, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = connection.execute(select(browser_jobs).where(browser_jobs.c.id == job_id)).first()
    return dict(row._mapping) if row else None


def running_job(connection: Connection, job_id: uuid.UUID, host: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(browser_jobs).where(
            browser_jobs.c.id == job_id,
            browser_jobs.c.status == BrowserJobStatus.RUNNING,
            browser_jobs.c.host == host,
        )
    ).first()
    return dict(row._mapping) if row else None


def deliver_code(connection: Connection, mailbox: str, code: str) -> None:
    """A second-factor message arrived in `mailbox` (the mail fetcher's, or a test's, write)."""
    connection.execute(browser_mailbox.insert().values(mailbox=mailbox, code=code))


def take_code(connection: Connection, mailbox: str, job: dict[str, Any]) -> str | None:
    """The newest unused code that reached `mailbox` since the job started; used once."""
    pick = (
        select(browser_mailbox.c.id)
        .where(
            browser_mailbox.c.mailbox == mailbox,
            browser_mailbox.c.consumed_by.is_(None),
            browser_mailbox.c.received_at >= job["started_at"],
        )
        .order_by(browser_mailbox.c.received_at.desc())
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    row = connection.execute(
        update(browser_mailbox)
        .where(browser_mailbox.c.id == pick)
        .values(consumed_by=job["id"], consumed_at=func.now())
        .returning(browser_mailbox.c.code)
    ).first()
    return row.code if row else None


def unended_jobs(connection: Connection) -> list[dict[str, Any]]:
    """Every queued or running job with its flow run, oldest first, without payload or result."""
    rows = connection.execute(
        select(
            browser_jobs.c.id,
            browser_jobs.c.kind,
            browser_jobs.c.status,
            browser_jobs.c.host,
            browser_jobs.c.flow_run_id,
            browser_jobs.c.timeout_seconds,
            browser_jobs.c.created_at,
            browser_jobs.c.started_at,
        )
        .where(browser_jobs.c.status.in_(UNENDED))
        .order_by(browser_jobs.c.created_at)
    )
    return [dict(row._mapping) for row in rows]


def end_unreported(connection: Connection, job_id: uuid.UUID, was: str, error: str) -> bool:
    """End a job no worker will report on: `running` becomes `lost`, `queued` becomes `failed`.
    False when it is no longer `was` (its worker reported, or it was claimed, meanwhile)."""
    done = connection.execute(
        update(browser_jobs)
        .where(browser_jobs.c.id == job_id, browser_jobs.c.status == was)
        .values(
            status=BrowserJobStatus.LOST
            if was == BrowserJobStatus.RUNNING
            else BrowserJobStatus.FAILED,
            error=error,
            finished_at=func.now(),
        )
    )
    return done.rowcount == 1


def list_jobs(connection: Connection, status: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest jobs first (of one status, when given), without payload or result."""
    query = select(*(c for c in browser_jobs.c if c.name not in ("payload", "result")))
    if status is not None:
        query = query.where(browser_jobs.c.status == status)
    rows = connection.execute(query.order_by(browser_jobs.c.created_at.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]
