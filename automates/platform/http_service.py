"""Our small HTTP services (the gate, the webhook): the FastAPI app they are built on, and
serving it with uvicorn, bounded.

`service_app` is a FastAPI app with no OpenAPI schema and no docs pages (each would be one more
route answering without the bearer check), whose `Refused` answers are JSON
(http_limits.Refused), and which logs one line per request through `RequestLog`.

Uvicorn reads a request's head with no deadline (its keep-alive timeout starts only after a
response, and any byte received cancels it), so a client sending a header a byte at a time
holds a connection forever. `_BoundedH11` gives each request's head the read timeout, from the
connection's start or the previous response; the app bounds the body itself
(http_limits.read_body). The head's size is bounded by h11 (`HEAD_MAX_BYTES`), and the
connections and requests served at once by `MAX_CONNECTIONS` (beyond: 503).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import h11
import uvicorn
from fastapi import FastAPI, Request, params
from fastapi.responses import Response
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from automates.platform.http_limits import Refused

MAX_CONNECTIONS = 200
HEAD_MAX_BYTES = 16 * 1024


class RequestLog:
    """ASGI middleware: one log line per request, `METHOD /path -> status`. Never a query
    string, a header or a body: those carry the tokens, codes and results that must stay out of
    the log. A request that fails unanswered is logged as the 500 it becomes."""

    def __init__(self, app: ASGIApp, log: logging.Logger) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self.log.info("%s %s -> %d", scope["method"], scope["path"], status)


async def _answer_refusal(request: Request, refusal: Refused) -> Response:
    return refusal.response()


def service_app(
    log: logging.Logger,
    *,
    lifespan: Lifespan[FastAPI] | None = None,
    dependencies: Sequence[params.Depends] = (),
) -> FastAPI:
    """A FastAPI app for one service: `dependencies` apply to each of its routes (the bearer
    check, http_auth.BearerToken), requests are logged to `log`."""
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        dependencies=dependencies,
        exception_handlers={Refused: _answer_refusal},
    )
    app.add_middleware(RequestLog, log=log)
    return app


class _BoundedH11(H11Protocol):
    """Uvicorn's h11 protocol, closing a connection whose request head is late."""

    head_timeout_seconds: float = 30.0
    _head_timer: asyncio.TimerHandle | None = None

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_seconds, self._head_too_late)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_late(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_timer()  # the head is in: the body has its own deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)


class Address(Protocol):
    """Where a service listens: its settings group (settings.gate, settings.webhook)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


def serve(app: Any, name: str, address: Address, read_timeout_seconds: float = 30.0) -> None:
    """Run `app` on `address` until stopped; each log line carries the service's `name`. The
    app logs one line per request itself, so uvicorn's access log and httpx's line per upstream
    call are left out."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    protocol = type("BoundedH11", (_BoundedH11,), {"head_timeout_seconds": read_timeout_seconds})
    uvicorn.run(
        app,
        host=address.host,
        port=address.port,
        log_level="warning",
        access_log=False,
        http=protocol,
        limit_concurrency=MAX_CONNECTIONS,
        h11_max_incomplete_event_size=HEAD_MAX_BYTES,
    )
