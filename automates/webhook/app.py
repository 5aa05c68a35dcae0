"""The webhook as a FastAPI app: `POST /automates/{name}/runs` starts one run of an automate.

Prefect's own webhooks are a Prefect Cloud feature, so this small app stands in for them,
built like the browser gate (automates/gate/app.py): FastAPI under uvicorn, one bearer token
compared in constant time (automates/platform/http_auth.py), one log line per request naming
method, path and status (never a body or a token; automates/platform/http_service.py).

- 429: too many requests from this address (counted before the token is checked, so that
  guessing is slow too) or with this token; Retry-After says when to come back;
- 401: no token, or a wrong one (checked before anything else, so names do not leak);
- 404: no declared automate of that name has `webhook: true`, or it has no deployment yet;
- 413: the body is over `max_bytes` (refused unread, Content-Length or not); 408: it did not
  arrive within the read timeout (automates/platform/http_limits.py);
- 422: the body is not a JSON object, nests deeper than MAX_JSON_DEPTH (parameters.py), or a
  parameter does not fit the deployment's parameter schema; `errors` names each parameter;
- 201: the run was created; the body gives its id. It goes through the worker and the guard
  like any run, tagged `trigger:webhook`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from automates import principal
from automates.errors import AutomatesError, DeclarationError
from automates.platform.http_auth import BearerToken
from automates.platform.http_limits import BodyLimits, CallerLimits, Refused, read_body
from automates.platform.http_service import service_app
from automates.registry.loader import load_registry
from automates.registry.model import Automate, Registry
from automates.server.client import prefect_client
from automates.server.runs import managed_deployment, parameter_problems, start_run
from automates.webhook.parameters import run_parameters

log = logging.getLogger("automates.webhook")

WEBHOOK_TAG = "trigger:webhook"
# The webhook's one bearer token has no caller name yet: its runs are `webhook:token`'s.
CALLER = "token"


@dataclass(frozen=True)
class WebhookConfig:
    api_url: str
    token: str = field(repr=False)
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


def create_app(config: WebhookConfig) -> FastAPI:
    registry = _Registry(config.registry_path)
    caller = BearerToken(
        config.token,
        CallerLimits(config.rate_limit, "AUTOMATES_WEBHOOK_RATE_LIMIT"),
        credential="token",
        refusal="unauthenticated: send Authorization: Bearer <token>",
    )
    app = service_app(log)

    # The token is checked before anything else, so that names do not leak.
    @app.post("/automates/{name}/runs", dependencies=[Depends(caller)])
    async def start(name: str, request: Request) -> Response:
        try:
            automate = registry.automate(name)
        except (OSError, DeclarationError) as error:
            return _error(503, f"the registry cannot be read: {error}")
        if automate is None or not automate.webhook:
            return _error(404, f"no automate named {name!r} accepts webhook runs")
        parameters = run_parameters(await read_body(request, config.body))
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
                run = await start_run(
                    client,
                    deployment,
                    parameters,
                    [WEBHOOK_TAG, principal.tag(principal.webhook(CALLER))],
                )
        except Refused:
            raise  # answered with its own status, not as the API's failure
        except AutomatesError as error:
            return _error(502, str(error))
        return JSONResponse(
            {"automate": name, "flow_run_id": str(run.id), "flow_run_name": run.name}, 201
        )

    # HEAD with GET, as Starlette routes have it (FastAPI routes answer only the methods named).
    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health() -> Response:
        return JSONResponse({"status": "ok"})

    return app


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status)
