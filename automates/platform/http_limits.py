"""Bounds shared by our small HTTP services (the gate, the webhook): request bodies read up to
a size and within a time, per-caller rate limits, JSON nested only so deep.

Uvicorn bounds a request's head (http_service.py); the body is the app's to read, and
Starlette's `request.body()` reads it whole, however large and however slowly it comes. So does
a FastAPI body parameter, before any dependency has run (the bearer check included): our
endpoints take no body parameter, they call `read_body` and validate its bytes with their
pydantic body model. Here a body is read chunk by chunk, refused (413) as soon as it passes its
limit, whatever its Content-Length says or when it has none (chunked), and refused (408) when
it has not arrived within the read timeout. Refusals close the connection: the rest of the
body is never read.

Rate limits use the `limits` library (moving windows, in this process's memory): each caller
(its address, and its token once authenticated) has its own window; a caller over it is
answered 429 with Retry-After, before anything else is done for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from automates.errors import AutomatesError, SettingsError

# Deeper JSON is no parameter anyone declares; Python's parser would recurse on it.
MAX_JSON_DEPTH = 32


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int
    read_timeout_seconds: float


class Refused(AutomatesError):
    """A request refused before it is served: its status, why, and its headers. The app
    answers it as it is (http_service.service_app), whichever handler raised it."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.detail}, self.status, headers=self.headers)


async def read_body(request: Request, limits: BodyLimits) -> bytes:
    """The request's body, at most `max_bytes`, arrived within the read timeout; else `Refused`
    (413, 408, or 400 when the client went away)."""
    too_large = Refused(
        413,
        f"request body over {limits.max_bytes} bytes; nothing was done",
        {"Connection": "close"},
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0

    async def collect() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_bytes:
                raise too_large
            chunks.append(chunk)

    try:
        async with asyncio.timeout(limits.read_timeout_seconds):
            await collect()
    except TimeoutError:
        raise Refused(
            408,
            f"request body not received within {limits.read_timeout_seconds:g} s",
            {"Connection": "close"},
        ) from None
    except ClientDisconnect:
        raise Refused(400, "the client went away during the body") from None
    return b"".join(chunks)


def json_depth(value: Any) -> int:
    """How deeply `value` nests lists and objects (a scalar is 0), without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            pending.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            pending.extend((v, depth + 1) for v in item)
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
    return deepest


class CallerLimits:
    """Per-caller rate limits: each key (an address, a token) gets its own moving window."""

    def __init__(self, rate: str, setting: str) -> None:
        try:
            self.items: list[RateLimitItem] = parse_many(rate)
        except ValueError:
            raise SettingsError(
                f"{setting} must be a rate such as '30/minute' or '10/second;300/hour', "
                f"not {rate!r}"
            ) from None
        self.rate = rate
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, kind: str, key: str) -> None:
        """Count one request of `key`; `Refused` (429, with Retry-After) when it is over."""
        over = [item for item in self.items if not self._limiter.test(item, kind, key)]
        if not over:
            for item in self.items:
                self._limiter.hit(item, kind, key)
            return
        resets = [self._limiter.get_window_stats(item, kind, key).reset_time for item in over]
        wait = max(1, math.ceil(max(resets) - time.time()))
        raise Refused(
            429,
            f"too many requests from this {kind} (limit {self.rate}); retry after {wait} s",
            {"Retry-After": str(wait)},
        )

    def check_all(self, keys: Iterable[tuple[str, str]]) -> None:
        for kind, key in keys:
            self.check(kind, key)


def caller_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def token_key(token: str) -> str:
    """A token's key in the rate limits: its digest, so that the limiter never holds it."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]
