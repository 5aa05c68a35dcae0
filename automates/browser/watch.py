"""Browser jobs no worker will ever report on, found and ended from the server side.

A residential worker reports a job's end through the gate. When it cannot (the machine lost
power, the worker was killed, the flow run was cancelled), the job would stay `running` or
`queued` for ever. The browser-job-watch automate (flows/browser_watch.py) ends them:

- `running` → `lost` when its flow run has ended (the report comes before the run ends, so it
  never will), no longer exists, or the job is past its own timeout plus a grace (the worker
  enforces the timeout, then reports: past both, nobody is left to report). Its flow run, if
  still open, is marked Crashed. What a lost job did is unknown: it is never re-run here (a
  browser that logs into a bank must not act twice); an operator decides.
- `queued` → `failed` when its flow run has ended or no longer exists before any worker
  claimed it (nothing ran), or when no flow run was ever attached (an enqueue that died
  between its two writes) and the grace has passed.

Every change is a conditional UPDATE on the status read: a worker's report or a claim that
lands meanwhile wins, and the job is left alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.states import BrowserJobStatus
from automates.store import browser_jobs
from automates.store.engine import transaction

_PAGE = 200


class RunSeen(BaseModel):
    """What the watch needs of a job's flow run."""

    model_config = ConfigDict(frozen=True)

    state_name: str
    final: bool


class Ended(BaseModel):
    """One job the watch ended, and why (no payload, no result: they may hold personal data)."""

    model_config = ConfigDict(frozen=True)

    job_id: uuid.UUID
    kind: str
    host: str | None
    was: BrowserJobStatus
    status: BrowserJobStatus
    reason: str
    flow_run_id: uuid.UUID | None


def reason_to_end(
    job: dict[str, Any], run: RunSeen | None, now: datetime, grace: timedelta
) -> str | None:
    """Why no worker will ever report on `job`, or None while one still may.

    `run` is the job's flow run as read after the job (None: it does not exist)."""
    flow_run_id = job["flow_run_id"]
    if job["status"] == BrowserJobStatus.RUNNING:
        if run is None:
            return f"claimed by {job['host']}, never reported; its flow run no longer exists"
        if run.final:
            return (
                f"claimed by {job['host']}, never reported; its flow run ended "
                f"{run.state_name} without the job's report"
            )
        deadline = job["started_at"] + timedelta(seconds=job["timeout_seconds"]) + grace
        if now > deadline:
            running = (now - job["started_at"]).total_seconds()
            return (
                f"claimed by {job['host']}, never reported; running {running:.0f} s, past its "
                f"{job['timeout_seconds']} s timeout and {grace.total_seconds():.0f} s of grace"
            )
        return None
    if flow_run_id is None:
        if now > job["created_at"] + grace:
            return "no flow run was ever created for it (its enqueue died); nothing ran"
        return None
    if run is None:
        return "its flow run no longer exists and no worker claimed it; nothing ran"
    if run.final:
        return f"its flow run ended {run.state_name} before any worker claimed it; nothing ran"
    return None


def end_unreported(
    engine: Engine, client: Any, now: datetime, grace: timedelta
) -> tuple[list[Ended], int]:
    """End every job no worker will report on; the jobs ended, and how many are still open.

    `client` is a synchronous Prefect client."""
    with transaction(engine) as connection:
        unended = browser_jobs.unended_jobs(connection)
    runs = _runs(client, [j["flow_run_id"] for j in unended if j["flow_run_id"] is not None])
    ended: list[Ended] = []
    for job in unended:
        run = runs.get(job["flow_run_id"])
        reason = reason_to_end(job, run, now, grace)
        if reason is None:
            continue
        with transaction(engine) as connection:
            if not browser_jobs.end_unreported(connection, job["id"], job["status"], reason):
                continue  # reported or claimed meanwhile
            # A worker took it and died: lost, never re-run.
            if job["status"] == BrowserJobStatus.RUNNING:
                raise_alert(
                    connection,
                    catalog.browser_job_lost(job["id"], job["kind"], job["flow_run_id"], reason),
                )
        if run is not None and not run.final:
            _crash(client, job["flow_run_id"], reason)
        ended.append(
            Ended(
                job_id=job["id"],
                kind=job["kind"],
                host=job["host"],
                was=job["status"],
                status=BrowserJobStatus.LOST
                if job["status"] == BrowserJobStatus.RUNNING
                else BrowserJobStatus.FAILED,
                reason=reason,
                flow_run_id=job["flow_run_id"],
            )
        )
    return ended, len(unended) - len(ended)


def announce(job: Ended) -> None:
    """One Prefect event per ended job, for automations to notify on."""
    from prefect.events import emit_event

    emit_event(
        event=f"automates.browser.job.{job.status}",
        resource={
            "prefect.resource.id": f"automates.browser-job.{job.job_id}",
            "prefect.resource.name": job.kind,
        },
        payload={"host": job.host, "was": job.was, "reason": job.reason},
    )


def _runs(client: Any, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, RunSeen]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    wanted = list(dict.fromkeys(ids))
    seen: dict[uuid.UUID, RunSeen] = {}
    for start in range(0, len(wanted), _PAGE):
        page = wanted[start : start + _PAGE]
        for flow_run in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=page)), limit=len(page)
        ):
            state = flow_run.state
            seen[flow_run.id] = RunSeen(
                state_name=flow_run.state_name or "unknown",
                final=state is not None and state.is_final(),
            )
    return seen


def _crash(client: Any, flow_run_id: uuid.UUID, reason: str) -> None:
    from prefect.states import Crashed

    client.set_flow_run_state(
        flow_run_id, Crashed(message=f"browser job lost: {reason}"), force=True
    )
