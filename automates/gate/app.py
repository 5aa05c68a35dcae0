"""The gate as a FastAPI app: authentication, the Prefect API allowlist, and the job endpoints.

Every request must carry the worker credential (`Authorization: Bearer <token>`, which is how
Prefect's client sends PREFECT_API_KEY; checked by automates/platform/http_auth.py). Prefect API
calls allowed by `policy` are forwarded to the upstream server; the others are answered 403 and
never reach it. The job endpoints (claim, second factor, finish) are served here from the
store, the worker never touching it. The access log (http_service.RequestLog) names method,
path and status only: bodies (results, codes) are never logged.

Every caller is rate limited (its address before authentication, the credential after) and
every body is read bounded in size and time (automates/platform/http_limits.py). Flow-run
updates and log batches are checked against `policy` before they are forwarded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine

from automates.browser.payload_secrets import PayloadKeys
from automates.gate.jobs_api import job_router
from automates.gate.policy import (
    Rule,
    allowed,
    log_run_ids,
    refused_update_fields,
    scoped_to_pool,
    why_not_held,
)
from automates.platform.http_auth import BearerToken
from automates.platform.http_limits import BodyLimits, CallerLimits, Refused, read_body
from automates.platform.http_service import service_app
from automates.store.engine import make_engine

log = logging.getLogger("automates.gate")

# Hop-by-hop and credential headers are the gate's business, not the upstream server's.
DROPPED_REQUEST_HEADERS = {
    "host",
    "authorization",
    "content-length",
    "transfer-encoding",
    "expect",
    "connection",
}
FORWARDED_RESPONSE_HEADERS = {"content-type"}


@dataclass(frozen=True)
class GateConfig:
    upstream_api_url: str  # http://server:4200/api
    worker_token: str = field(repr=False)
    pool: str
    database_url: str
    body: BodyLimits = field(default_factory=lambda: BodyLimits(2 * 1024 * 1024, 30.0))
    rate_limit: str = "100/second"
    # Opens the sealed secrets of the payloads it hands over (decision 0048); without it, a
    # sealed payload fails its claim.
    payload_keys: PayloadKeys | None = field(default=None, repr=False)


def _refused(detail: str, status: int = 403) -> Refused:
    return Refused(status, f"refused by the gate: {detail}")


def _json(content: bytes) -> Any:
    try:
        return json.loads(content or b"null")
    except (ValueError, RecursionError):
        raise Refused(422, "the body must be JSON") from None


def create_app(config: GateConfig) -> FastAPI:
    engine_holder: dict[str, Engine] = {}
    owned_ids: set[tuple[str, str]] = set()
    worker = BearerToken(
        config.worker_token,
        CallerLimits(config.rate_limit, "AUTOMATES_GATE_RATE_LIMIT"),
        credential="credential",
        refusal="unauthenticated",
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine_holder["engine"] = make_engine(config.database_url)
        async with httpx.AsyncClient(timeout=60.0, trust_env=False) as upstream:
            app.state.upstream = upstream
            yield
        engine_holder["engine"].dispose()

    # The credential is checked for every route, before any body is read.
    app = service_app(log, lifespan=lifespan, dependencies=[Depends(worker)])
    app.include_router(
        job_router(lambda: engine_holder["engine"], config.body, config.payload_keys)
    )

    async def belongs_to_pool(upstream: httpx.AsyncClient, kind: str, object_id: str) -> bool:
        if (kind, object_id) in owned_ids:
            return True
        path = "flow_runs" if kind == "flow_run" else "deployments"
        response = await upstream.get(f"{config.upstream_api_url}/{path}/{object_id}")
        ours = response.status_code == 200 and response.json().get("work_pool_name") == config.pool
        if ours:
            # An object never moves to another pool's worker; remembering it saves a round trip.
            owned_ids.add((kind, object_id))
        return ours

    async def read_upstream(upstream: httpx.AsyncClient, path: str) -> dict[str, Any] | None:
        response = await upstream.get(f"{config.upstream_api_url}/{path}")
        found = response.json() if response.status_code == 200 else None
        return found if isinstance(found, dict) else None

    async def held_lines(upstream: httpx.AsyncClient, asked: Any) -> tuple[list[Any], list[str]]:
        """The lines of a log batch for runs the pool's workers hold, and why the others are
        refused (one reason per run named)."""
        ids = log_run_ids(asked)
        if isinstance(ids, str):
            raise _refused(ids)
        flow_runs, task_runs = ids
        refusals: dict[str, str] = {}
        for run_id in sorted(flow_runs):
            why = why_not_held(await read_upstream(upstream, f"flow_runs/{run_id}"), config.pool)
            if why:
                refusals[run_id] = why
        task_flow: dict[str, str] = {}
        for task_id in sorted(task_runs):
            task = await read_upstream(upstream, f"task_runs/{task_id}")
            task_flow[task_id] = str((task or {}).get("flow_run_id")).lower()
        kept = []
        for line in asked:
            run_id, task_id = line["flow_run_id"].lower(), line.get("task_run_id")
            if task_id is not None and task_flow[task_id.lower()] != run_id:
                refusals.setdefault(task_id.lower(), "the task run is not of the line's flow run")
            elif run_id not in refusals:
                kept.append(line)
        return kept, [f"{run}: {why}" for run, why in refusals.items()]

    async def checked_body(
        upstream: httpx.AsyncClient, rule: Rule, content: bytes
    ) -> tuple[bytes, list[str]]:
        """The body to forward, and the refusals of a partly refused log batch."""
        if rule.checked == "flow_run_update":
            fields = refused_update_fields(_json(content))
            if fields:
                raise _refused(
                    f"a {config.pool!r} worker may change a flow run's name, version, retry "
                    f"policy and process id only, not {', '.join(fields)}"
                )
        if rule.checked == "logs":
            kept, refusals = await held_lines(upstream, _json(content))
            if refusals:
                return json.dumps(kept).encode(), refusals
        if rule.scoped:
            asked = _json(content or b"{}")
            content = json.dumps(scoped_to_pool(asked, config.pool)).encode()
        return content, []

    # HEAD with GET, as Starlette routes have it (FastAPI routes answer only the methods named).
    @app.api_route("/api/{path:path}", methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"])
    async def prefect_api(request: Request) -> Response:
        content = await read_body(request, config.body)
        path = request.url.path
        verdict = allowed(request.method, path, config.pool)
        upstream: httpx.AsyncClient = request.app.state.upstream
        if verdict is None:
            return JSONResponse(
                {
                    "detail": f"refused by the gate: {request.method} {path} is not a call a "
                    f"{config.pool!r} worker makes"
                },
                403,
            )
        rule, object_id = verdict
        if rule.owned and object_id and not await belongs_to_pool(upstream, rule.owned, object_id):
            return JSONResponse(
                {
                    "detail": f"refused by the gate: that {rule.owned} is not in pool "
                    f"{config.pool!r}"
                },
                403,
            )
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in DROPPED_REQUEST_HEADERS
        }
        content, refusals = await checked_body(upstream, rule, content)
        if refusals and content == b"[]":
            raise _refused(f"logs of runs no {config.pool!r} worker holds: {'; '.join(refusals)}")
        answer = await upstream.request(
            request.method,
            config.upstream_api_url + path.removeprefix("/api"),
            params=request.query_params,
            content=content,
            headers=headers,
        )
        if refusals:
            others = "were written" if answer.is_success else f"got {answer.status_code}"
            raise _refused(
                f"logs of runs no {config.pool!r} worker holds: {'; '.join(refusals)} (the "
                f"batch's other lines {others})"
            )
        return Response(
            answer.content,
            answer.status_code,
            headers={
                k: v for k, v in answer.headers.items() if k.lower() in FORWARDED_RESPONSE_HEADERS
            },
        )

    return app
