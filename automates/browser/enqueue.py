"""Enqueue and read browser jobs: the Python API for automates, and what the CLI calls.

`enqueue` validates the kind, the payload and the addresses of its URLs (decision 0028) before
anything exists; only then does it write the job row, its secret fields sealed (decision 0048),
and ask Prefect for the flow run that a `residential` worker will pull. If Prefect refuses, the
row is removed again.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from prefect.exceptions import ObjectNotFound
from pydantic import BaseModel, ConfigDict

from automates.browser.addresses import settings_rule
from automates.browser.deploy import FLOW_NAME
from automates.browser.kinds import check_addresses, parse_payload
from automates.browser.payload_secrets import payload_keys, sealed_payload
from automates.errors import BrowserJobError, BrowserPayloadError, UnknownBrowserJobError
from automates.server.client import prefect_client
from automates.settings import Settings
from automates.states import BrowserJobStatus
from automates.store import browser_jobs
from automates.store.database import database_url
from automates.store.engine import make_engine, transaction, transaction_on

MAX_TIMEOUT_SECONDS = 3600


class BrowserJobLine(BaseModel):
    """A job as listings show it: everything but the payload and the result."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: uuid.UUID
    kind: str
    status: str
    timeout_seconds: int
    flow_run_id: uuid.UUID | None
    host: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    counters: dict[str, int]


class BrowserJob(BrowserJobLine):
    """A job as the store holds it; `result` may hold personal data."""

    result: dict[str, Any] | None


def _timeout(settings: Settings, kind: str, timeout_seconds: int | None) -> int:
    value = settings.browser.job_timeout_seconds if timeout_seconds is None else timeout_seconds
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_TIMEOUT_SECONDS
    ):
        raise BrowserPayloadError(
            f"kind {kind!r}: field 'timeout_seconds' must be an integer from 1 to "
            f"{MAX_TIMEOUT_SECONDS}"
        )
    return value


async def enqueue(
    settings: Settings, kind: str, payload: Any, timeout_seconds: int | None = None
) -> BrowserJob:
    """Validate, record and start one job; BrowserPayloadError (nothing created) if invalid."""
    model = parse_payload(kind, payload)
    timeout = _timeout(settings, kind, timeout_seconds)
    await check_addresses(kind, model, await asyncio.to_thread(settings_rule, settings))
    stored = sealed_payload(model, await asyncio.to_thread(payload_keys, settings))
    engine = make_engine(database_url(settings))
    try:
        with transaction(engine) as connection:
            job_id = browser_jobs.insert_job(connection, kind, stored, timeout)
        try:
            flow_run_id = await _start_flow_run(settings, job_id)
        except BaseException:
            with transaction(engine) as connection:
                browser_jobs.delete_queued(connection, job_id)
            raise
        with transaction(engine) as connection:
            browser_jobs.attach_flow_run(connection, job_id, flow_run_id)
            row = browser_jobs.read_job(connection, job_id)
    finally:
        engine.dispose()
    return BrowserJob.model_validate(row)


async def _start_flow_run(settings: Settings, job_id: uuid.UUID) -> uuid.UUID:
    name = f"{FLOW_NAME}/{settings.browser.deployment}"
    async with prefect_client(settings.api_url) as client:
        try:
            deployment = await client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise BrowserJobError(
                f"no deployment {name} on the server: run `automates browser deploy` first"
            ) from None
        flow_run = await client.create_flow_run_from_deployment(
            deployment.id, parameters={"job_id": str(job_id)}, name=f"browser-{job_id}"
        )
    return flow_run.id


def enqueue_job(
    settings: Settings, kind: str, payload: Any, timeout_seconds: int | None = None
) -> BrowserJob:
    """`enqueue` for synchronous callers."""
    return asyncio.run(enqueue(settings, kind, payload, timeout_seconds))


def get_job(settings: Settings, job_id: str | uuid.UUID) -> BrowserJob:
    try:
        key = uuid.UUID(str(job_id))
    except ValueError:
        raise UnknownBrowserJobError(f"{str(job_id)[:60]!r} is not a browser job id") from None
    with transaction_on(database_url(settings)) as connection:
        row = browser_jobs.read_job(connection, key)
    if row is None:
        raise UnknownBrowserJobError(f"no browser job {key}")
    return BrowserJob.model_validate(row)


def list_jobs(
    settings: Settings, status: str | None = None, limit: int = 50
) -> list[BrowserJobLine]:
    """The newest jobs first, of one status when given; never their payloads or results."""
    if status is not None and status not in tuple(BrowserJobStatus):
        raise BrowserPayloadError(
            f"browser jobs: field 'status' must be one of {', '.join(BrowserJobStatus)}, "
            f"not {status[:40]!r}"
        )
    if not 1 <= limit <= 1000:
        raise BrowserPayloadError("browser jobs: field 'limit' must be from 1 to 1000")
    with transaction_on(database_url(settings)) as connection:
        rows = browser_jobs.list_jobs(connection, status, limit)
    return [BrowserJobLine.model_validate(row) for row in rows]
