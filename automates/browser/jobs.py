"""Every statement on the browser job and mailbox tables.

A job moves queued → running (claimed by exactly one worker) → done | failed. The claim is
a single conditional UPDATE: of two workers handed the same job, one gets the row and the
other gets nothing, whatever Prefect did.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, func, null, select, update

from automates.store.schema import browser_jobs, browser_mailbox

TERMINAL = ("done", "failed")


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


def attach_flow_run(connection: Connection, job_id: uuid.UUID, flow_run_id: uuid.UUID) -> None:
    connection.execute(
        update(browser_jobs).where(browser_jobs.c.id == job_id).values(flow_run_id=flow_run_id)
    )


def delete_queued(connection: Connection, job_id: uuid.UUID) -> None:
    """Undo an enqueue whose flow run could not be created."""
    connection.execute(
        browser_jobs.delete().where(browser_jobs.c.id == job_id, browser_jobs.c.status == "queued")
    )


def claim_job(connection: Connection, job_id: uuid.UUID, host: str) -> dict[str, Any] | None:
    """Move a queued job to running for `host`; None when it is not queued (already claimed)."""
    row = connection.execute(
        update(browser_jobs)
        .where(browser_jobs.c.id == job_id, browser_jobs.c.status == "queued")
        .values(
            status="running",
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
            browser_jobs.c.status == "running",
            browser_jobs.c.host == host,
        )
        .values(
            status=status,
            # SQL NULL, not the JSON value null: only a done job has a result.
            result=result if status == "done" and result is not None else null(),
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
            browser_jobs.c.status == "running",
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
