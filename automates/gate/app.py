"""The gate as an ASGI app: authentication, the Prefect API allowlist, and the job endpoints.

Every request must carry the worker credential (`Authorization: Bearer <token>`, which is how
Prefect's client sends PREFECT_API_KEY). Prefect API calls allowed by `policy` are forwarded
to the upstream server; the others are answered 403 and never reach it. The job endpoints
(claim, second factor, finish) are served here from the store, the worker never touching it.
The access log names method, path and status only: bodies (results, codes) are never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from automates.gate.jobs_api import job_endpoints
from automates.gate.policy import allowed, scoped_to_pool
from automates.store.engine import make_engine

log = logging.getLogger("automates.gate")

# Hop-by-hop and credential headers are the gate's business, not the upstream server's.
DROPPED_REQUEST_HEADERS = {"host", "authorization", "content-length", "connection"}
FORWARDED_RESPONSE_HEADERS = {"content-type"}


@dataclass(frozen=True)
class GateConfig:
    upstream_api_url: str  # http://server:4200/api
    worker_token: str
    pool: str
    database_url: str


def create_app(config: GateConfig) -> Starlette:
    engine_holder: dict[str, Engine] = {}
    owned_ids: set[tuple[str, str]] = set()

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

    def guarded(
        endpoint: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def check(request: Request) -> Response:
            if not authorized(request):
                response: Response = JSONResponse({"detail": "unauthenticated"}, 401)
            else:
                response = await endpoint(request)
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

    async def prefect_api(request: Request) -> Response:
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
        content = await request.body()
        if rule.scoped:
            try:
                asked = json.loads(content or b"{}")
            except ValueError:
                return JSONResponse({"detail": "a JSON filter body is required"}, 422)
            content = json.dumps(scoped_to_pool(asked, config.pool)).encode()
        answer = await upstream.request(
            request.method,
            config.upstream_api_url + path.removeprefix("/api"),
            params=request.query_params,
            content=content,
            headers=headers,
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
