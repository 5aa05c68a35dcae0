"""The gate as an ASGI app: authentication, the Prefect API allowlist, and the job endpoints.

Every request must carry the worker credential (`Authorization: Bearer <token>`, which is how
Prefect's client sends PREFECT_API_KEY). Prefect API calls allowed by `policy` are forwarded
to the upstream server; the others are answered 403 and never reach it. The job endpoints
(claim, second factor, finish) are served here from the store, the worker never touching it.
The access log names method, path and status only: bodies (results, codes) are never logged.

Every caller is rate limited (its address before authentication, the credential after) and
every body is read bounded in size and time (automates/platform/http_limits.py). Flow-run
updates and log batches are checked against `policy` before they are forwarded.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from automates.gate.jobs_api import job_endpoints
from automates.gate.policy import (
    Rule,
    allowed,
    log_run_ids,
    refused_update_fields,
    scoped_to_pool,
    why_not_held,
)
from automates.platform.http_limits import (
    BodyLimits,
    CallerLimits,
    Refused,
    caller_address,
    read_body,
)
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
    worker_token: str
    pool: str
    database_url: str
    body: BodyLimits = field(default_factory=lambda: BodyLimits(2 * 1024 * 1024, 30.0))
    rate_limit: str = "100/second"


Endpoint = Callable[[Request, bytes], Awaitable[Response]]


def _refused(detail: str, status: int = 403) -> Refused:
    return Refused(status, f"refused by the gate: {detail}")


def _json(content: bytes) -> Any:
    try:
        return json.loads(content or b"null")
    except (ValueError, RecursionError):
        raise Refused(422, "the body must be JSON") from None


def create_app(config: GateConfig) -> Starlette:
    engine_holder: dict[str, Engine] = {}
    owned_ids: set[tuple[str, str]] = set()
    callers = CallerLimits(config.rate_limit, "AUTOMATES_GATE_RATE_LIMIT")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        engine_holder["engine"] = make_engine(config.database_url)
        async with httpx.AsyncClient(timeout=60.0, trust_env=False) as upstream:
            app.state.upstream = upstream
            yield
        engine_holder["engine"].dispose()

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        return hmac.compare_digest(token.encode(), config.worker_token.encode())

    def guarded(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def check(request: Request) -> Response:
            try:
                callers.check("address", caller_address(request))
                if not authorized(request):
                    response: Response = JSONResponse({"detail": "unauthenticated"}, 401)
                else:
                    callers.check("credential", "worker")
                    response = await endpoint(request, await read_body(request, config.body))
            except Refused as refusal:
                response = refusal.response()
            log.info("%s %s -> %d", request.method, request.url.path, response.status_code)
            return response

        return check

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

    async def prefect_api(request: Request, content: bytes) -> Response:
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

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    jobs_path = "/automates/browser/jobs/{job_id}"
    endpoints = job_endpoints(lambda: engine_holder["engine"])
    return Starlette(
        routes=[
            *(
                Route(f"{jobs_path}/{name}", guarded(endpoint), methods=["POST"])
                for name, endpoint in endpoints.items()
            ),
            Route("/api/{path:path}", guarded(prefect_api), methods=methods),
        ],
        lifespan=lifespan,
    )
