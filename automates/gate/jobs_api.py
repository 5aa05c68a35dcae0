"""The gate's job endpoints: what a residential worker asks the server side for.

Claim, second factor and finish are served here from the store, so the worker never holds
the database URL. The claim opens the payload's sealed secret fields (decision 0048) before it
hands the payload over, so the worker never holds their key either; a payload it cannot open
fails the job, naming it and the key's setting. Each takes a JSON body (never a command line)
naming the worker's host (job_bodies.py); a job can be finished, or get a code, only by the
host that claimed it. Store calls run in a thread so that a slow query never stalls the gate's
proxying.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy import Engine

from automates.browser.payload_secrets import PayloadKeys, opened_payload
from automates.errors import BrowserPayloadKeyError
from automates.gate.job_bodies import HOST_REQUIRED, JobCall, JobEnd, why_refused
from automates.platform.http_limits import BodyLimits, Refused, read_body
from automates.states import BrowserJobStatus
from automates.store import browser_jobs
from automates.store.engine import transaction

log = logging.getLogger("automates.gate")

JOBS_PATH = "/automates/browser/jobs/{job_id}"

Body = TypeVar("Body", bound=JobCall)


def job_router(
    engine: Callable[[], Engine], limits: BodyLimits, keys: PayloadKeys | None = None
) -> APIRouter:
    """The endpoints (claim, second-factor, finish) under JOBS_PATH, on the store `engine()`
    returns, opening payloads with `keys`. The caller is authenticated by the app (the gate's
    dependencies) before a body is read, and the body is read within `limits`."""
    router = APIRouter(prefix=JOBS_PATH)

    async def received(job_id: str, request: Request, model: type[Body]) -> tuple[uuid.UUID, Body]:
        content = await read_body(request, limits)
        try:
            return uuid.UUID(job_id), model.model_validate_json(content)
        except ValidationError as error:
            raise Refused(422, why_refused(error)) from None
        except ValueError:  # the job id
            raise Refused(422, HOST_REQUIRED) from None

    def claim_now(job_id: uuid.UUID, host: str) -> dict[str, Any] | str | None:
        """The claimed job with its payload opened; None when it is not queued; the reason
        when its payload cannot be opened (the job is then failed: no worker could run it)."""
        with transaction(engine()) as connection:
            claimed = browser_jobs.claim_job(connection, job_id, host)
            if claimed is None:
                return None
            try:
                claimed["payload"] = opened_payload(job_id, claimed["payload"], keys)
            except BrowserPayloadKeyError as error:
                failed = BrowserJobStatus.FAILED
                browser_jobs.finish_job(connection, job_id, host, failed, None, str(error), {})
                return str(error)
            return claimed

    def code_now(job_id: uuid.UUID, host: str) -> str | Response | None:
        with transaction(engine()) as connection:
            job = browser_jobs.running_job(connection, job_id, host)
            mailbox = (job or {}).get("payload", {}).get("mailbox")
            if job is None or not isinstance(mailbox, str):
                return JSONResponse({"detail": "no running job of this host needs a code"}, 409)
            return browser_jobs.take_code(connection, mailbox, job)

    def finish_now(job_id: uuid.UUID, end: JobEnd) -> bool:
        with transaction(engine()) as connection:
            return browser_jobs.finish_job(
                connection, job_id, end.host, end.status, end.result, end.error, end.counters
            )

    @router.post("/claim")
    async def claim(job_id: str, request: Request) -> Response:
        job, call = await received(job_id, request, JobCall)
        claimed = await run_in_threadpool(claim_now, job, call.host)
        if claimed is None:
            return JSONResponse({"detail": "the job is not queued"}, 409)
        if isinstance(claimed, str):
            log.warning("%s", claimed)  # names the job, its fields and the key's source only
            return JSONResponse({"detail": claimed}, 422)
        return JSONResponse(claimed)

    @router.post("/second-factor")
    async def second_factor(job_id: str, request: Request) -> Response:
        job, call = await received(job_id, request, JobCall)
        code = await run_in_threadpool(code_now, job, call.host)
        if isinstance(code, Response):
            return code
        if code is None:
            return JSONResponse({"detail": "no code in the mailbox yet"}, 404)
        return JSONResponse({"code": code})

    @router.post("/finish")
    async def finish(job_id: str, request: Request) -> Response:
        job, end = await received(job_id, request, JobEnd)
        if not await run_in_threadpool(finish_now, job, end):
            return JSONResponse({"detail": "no running job of this host has that id"}, 409)
        return JSONResponse({"status": end.status})

    return router
