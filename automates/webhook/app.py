"""The webhook as an ASGI app: `POST /automates/{name}/runs` starts one run of an automate.

Prefect's own webhooks are a Prefect Cloud feature, so this small app stands in for them,
built like the browser gate (automates/gate/app.py): Starlette under uvicorn, one bearer
token compared in constant time, one log line per request naming method, path and status
(never a body or a token).

- 429: too many requests from this address (counted before the token is checked, so that
  guessing is slow too) or with this token; Retry-After says when to come back;
- 401: no token, or a wrong one (checked before anything else, so names do not leak);
- 404: no declared automate of that name has `webhook: true`, or it has no deployment yet;
- 413: the body is over `max_bytes` (refused unread, Content-Length or not); 408: it did not
  arrive within the read timeout (automates/platform/http_limits.py);
- 422: the body is not a JSON object, nests deeper than MAX_JSON_DEPTH, or a parameter does
  not fit the deployment's parameter schema; `errors` names each parameter;
- 201: the run was created; the body gives its id. It goes through the worker and the guard
  like any run, tagged `trigger:webhook`.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from automates.errors import AutomatesError, DeclarationError
from automates.platform.http_limits import (
    MAX_JSON_DEPTH,
    BodyLimits,
    CallerLimits,
    Refused,
    caller_address,
    json_depth,
    read_body,
    token_key,
)
from automates.registry.loader import load_registry
from automates.registry.model import Automate, Registry
from automates.server.client import prefect_client
from automates.server.runs import managed_deployment, parameter_problems, start_run

log = logging.getLogger("automates.webhook")

WEBHOOK_TAG = "trigger:webhook"


@dataclass(frozen=True)
class WebhookConfig:
    api_url: str
    token: str
    registry_path: Path
    body: BodyLimits = field(default_factory=lambda: BodyLimits(64 * 1024, 30.0))
    rate_limit: str = "30/minute"


@dataclass
class _Registry:
    """The registry file, re-read when it changes (a sync may add or remove webhooks)."""

    path: Path
    _read: tuple[int, Registry] | None = field(default=None, init=False)

    def automate(self, name: str) -> Automate | None:
        stamp = self.path.stat().st_mtime_ns
        if self._read is None or self._read[0] != stamp:
            self._read = (stamp, load_registry(self.path))
        return self._read[1].get(name)


def create_app(config: WebhookConfig) -> Starlette:
    registry = _Registry(config.registry_path)
    callers = CallerLimits(config.rate_limit, "AUTOMATES_WEBHOOK_RATE_LIMIT")

    def bearer(request: Request) -> str:
        header = request.headers.get("authorization", "")
        return header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""

    def authorized(request: Request) -> bool:
        return hmac.compare_digest(bearer(request).encode(), config.token.encode())

    def logged(
        endpoint: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            response = await endpoint(request)
            log.info("%s %s -> %d", request.method, request.url.path, response.status_code)
            return response

        return handle

    async def start(request: Request) -> Response:
        try:
            callers.check("address", caller_address(request))
            if not authorized(request):
                return _error(401, "unauthenticated: send Authorization: Bearer <token>")
            callers.check("token", token_key(bearer(request)))
            return await start_run_of(request)
        except Refused as refusal:
            return refusal.response()

    async def start_run_of(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            automate = registry.automate(name)
        except (OSError, DeclarationError) as error:
            return _error(503, f"the registry cannot be read: {error}")
        if automate is None or not automate.webhook:
            return _error(404, f"no automate named {name!r} accepts webhook runs")
        body = await read_body(request, config.body)
        try:
            parameters = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError):
            parameters = None
        if not isinstance(parameters, dict):
            return _error(422, "the body must be a JSON object of flow parameters")
        if json_depth(parameters) > MAX_JSON_DEPTH:
            return _error(422, f"parameters may nest at most {MAX_JSON_DEPTH} levels deep")
        try:
            async with prefect_client(config.api_url) as client:
                deployment = await managed_deployment(client, name)
                if deployment is None:
                    return _error(404, f"{name!r} has no deployment yet (`automates sync`)")
                problems = parameter_problems(
                    deployment.parameter_openapi_schema, deployment.parameters, parameters
                )
                if problems:
                    return _error(
                        422,
                        f"{name}: parameters refused; no run was started",
                        errors=[{"parameter": p, "message": m} for p, m in problems],
                    )
                run = await start_run(client, deployment, parameters, [WEBHOOK_TAG])
        except AutomatesError as error:
            return _error(502, str(error))
        return JSONResponse(
            {"automate": name, "flow_run_id": str(run.id), "flow_run_name": run.name}, 201
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/automates/{name}/runs", logged(start), methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status)
