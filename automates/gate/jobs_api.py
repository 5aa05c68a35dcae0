"""The gate's job endpoints: what a residential worker asks the server side for.

Claim, second factor and finish are served here from the store, so the worker never holds
the database URL. Each takes a JSON body (never a command line) naming the worker's host; a
job can be finished, or get a code, only by the host that claimed it. Store calls run in a
thread so that a slow query never stalls the gate's proxying.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from automates.browser import jobs
from automates.store.engine import transaction

# The body is read by the gate, bounded (automates/platform/http_limits.py), before the call.
Endpoint = Callable[[Request, bytes], Awaitable[Response]]


def _parsed(request: Request, content: bytes) -> tuple[uuid.UUID, dict[str, Any]] | Response:
    try:
        job_id = uuid.UUID(request.path_params["job_id"])
        body = json.loads(content)
        if not isinstance(body, dict) or not isinstance(body.get("host"), str):
            raise ValueError("host")
    except (ValueError, RecursionError):
        return JSONResponse({"detail": "a job id and a JSON body with 'host' are required"}, 422)
    return job_id, body


def _valid_end(body: dict[str, Any]) -> bool:
    result, error, counters = body.get("result"), body.get("error"), body.get("counters")
    return (
        body.get("status") in jobs.TERMINAL
        and (result is None or isinstance(result, dict))
        and (error is None or isinstance(error, str))
        and isinstance(counters, dict)
        and all(isinstance(v, int) for v in counters.values())
    )


def job_endpoints(engine: Callable[[], Engine]) -> dict[str, Endpoint]:
    """The endpoints by name (claim, second-factor, finish), on the store `engine()` returns."""

    def claim_now(job_id: uuid.UUID, host: str) -> dict[str, Any] | None:
        with transaction(engine()) as connection:
            return jobs.claim_job(connection, job_id, host[:200])

    def code_now(job_id: uuid.UUID, host: str) -> str | Response | None:
        with transaction(engine()) as connection:
            job = jobs.running_job(connection, job_id, host)
            mailbox = (job or {}).get("payload", {}).get("mailbox")
            if job is None or not isinstance(mailbox, str):
                return JSONResponse({"detail": "no running job of this host needs a code"}, 409)
            return jobs.take_code(connection, mailbox, job)

    def finish_now(job_id: uuid.UUID, body: dict[str, Any]) -> bool:
        with transaction(engine()) as connection:
            return jobs.finish_job(
                connection,
                job_id,
                body["host"],
                body["status"],
                body.get("result"),
                body.get("error"),
                body["counters"],
            )

    async def claim(request: Request, content: bytes) -> Response:
        parsed = _parsed(request, content)
        if isinstance(parsed, Response):
            return parsed
        claimed = await run_in_threadpool(claim_now, parsed[0], parsed[1]["host"])
        if claimed is None:
            return JSONResponse({"detail": "the job is not queued"}, 409)
        return JSONResponse(claimed)

    async def second_factor(request: Request, content: bytes) -> Response:
        parsed = _parsed(request, content)
        if isinstance(parsed, Response):
            return parsed
        code = await run_in_threadpool(code_now, parsed[0], parsed[1]["host"])
        if isinstance(code, Response):
            return code
        if code is None:
            return JSONResponse({"detail": "no code in the mailbox yet"}, 404)
        return JSONResponse({"code": code})

    async def finish(request: Request, content: bytes) -> Response:
        parsed = _parsed(request, content)
        if isinstance(parsed, Response):
            return parsed
        job_id, body = parsed
        if not _valid_end(body):
            return JSONResponse({"detail": "status, result, error or counters malformed"}, 422)
        if not await run_in_threadpool(finish_now, job_id, body):
            return JSONResponse({"detail": "no running job of this host has that id"}, 409)
        return JSONResponse({"status": body["status"]})

    return {"claim": claim, "second-factor": second_factor, "finish": finish}
