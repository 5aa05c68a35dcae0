"""The webhook as a FastAPI app: `POST /automates/{name}/runs` starts one run of an automate.

Prefect's own webhooks are a Prefect Cloud feature, so this small app stands in for them,
built like the browser gate (automates/gate/app.py): FastAPI under uvicorn, one log line per
request naming method, path and status (never a body or a token;
automates/platform/http_service.py). Each caller sends its own bearer token
(automates/webhook/callers.py); the caller it belongs to is the run's principal.

- 429: too many requests from this address (counted before the token is checked, so that
  guessing is slow too) or from this caller; Retry-After says when to come back;
- 401: no token, or one no active caller has (checked before anything else, so names do not
  leak); 503 when the store, which holds the callers, cannot be read;
- 404: no declared automate of that name has `webhook: true`, the caller may not start it
  (said the same way, so a caller limited to some automates learns nothing of the others), or
  it has no deployment yet;
- 413: the body is over `max_bytes` (refused unread, Content-Length or not); 408: it did not
  arrive within the read timeout (automates/platform/http_limits.py);
- 422: the body is not a JSON object, nests deeper than MAX_JSON_DEPTH (parameters.py), or a
  parameter does not fit the deployment's parameter schema; `errors` names each parameter;
- 201: the run was created; the body gives its id. It goes through the worker and the guard
  like any run, tagged `trigger:webhook` and `principal:webhook:CALLER`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from automates import principal
from automates.errors import AutomatesError, DeclarationError, StoreError
from automates.platform.http_limits import (
    BodyLimits,
    CallerLimits,
    Refused,
    caller_address,
    read_body,
)
from automates.platform.http_service import service_app
from automates.registry.loader import load_registry
from automates.registry.model import Automate, Registry
from automates.server.client import prefect_client
from automates.server.runs import managed_deployment, parameter_problems, start_run
from automates.store.engine import make_engine
from automates.webhook.callers import Admitted, Gatekeeper
from automates.webhook.parameters import run_parameters

log = logging.getLogger("automates.webhook")

WEBHOOK_TAG = "trigger:webhook"
UNAUTHENTICATED = "unauthenticated: send Authorization: Bearer <token>"
_BEARER = HTTPBearer(auto_error=False)  # reads the header only; every refusal is ours


@dataclass(frozen=True)
class WebhookConfig:
    api_url: str
    registry_path: Path
    database_url: str | None  # the store, which holds the callers; None: the setting's only
    setting_token: str | None = field(default=None, repr=False)
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


@dataclass(frozen=True)
class _CallerCheck:
    """The FastAPI dependency that admits a request's caller: its address counted against the
    rate limit first (so guessing is slow too), then its token, then the caller's own window
    (keyed by its name: the limiter never holds a token)."""

    limits: CallerLimits
    gatekeeper: Gatekeeper

    # A plain function: FastAPI runs it in its thread pool, where the store's lookup may block.
    def __call__(
        self,
        request: Request,
        sent: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        self.limits.check("address", caller_address(request))
        try:
            caller = self.gatekeeper.admit(sent.credentials if sent is not None else "")
        except StoreError:
            log.exception("the webhook's callers cannot be read")
            raise Refused(503, "the webhook's callers cannot be read; retry later") from None
        if caller is None:
            raise Refused(401, UNAUTHENTICATED)
        self.limits.check("caller", caller.name)
        request.state.caller = caller


def create_app(config: WebhookConfig) -> FastAPI:
    registry = _Registry(config.registry_path)
    # The engine connects on first use, not here.
    engine = None if config.database_url is None else make_engine(config.database_url)
    check = _CallerCheck(
        CallerLimits(config.rate_limit, "AUTOMATES_WEBHOOK_RATE_LIMIT"),
        Gatekeeper(engine, config.setting_token),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if engine is not None:
            engine.dispose()

    app = service_app(log, lifespan=lifespan)

    # The caller is admitted before anything else, so that names do not leak.
    @app.post("/automates/{name}/runs", dependencies=[Depends(check)])
    async def start(name: str, request: Request) -> Response:
        caller: Admitted = request.state.caller
        try:
            automate = registry.automate(name)
        except (OSError, DeclarationError) as error:
            return _error(503, f"the registry cannot be read: {error}")
        if automate is None or not automate.webhook or not caller.may_start(name):
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
                    [WEBHOOK_TAG, principal.tag(principal.webhook(caller.name))],
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
