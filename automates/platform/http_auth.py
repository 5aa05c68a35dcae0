"""The gate's bearer check, as a FastAPI dependency (the webhook has one token per caller,
automates/webhook/callers.py).

The gate has one token; a caller sends it as `Authorization: Bearer <token>` (how Prefect's
client sends PREFECT_API_KEY). The check counts the caller's address against the rate limit
first, so that guessing the token is slowed down too, then compares the token in constant time,
then counts the token's own window (http_limits.CallerLimits).

FastAPI's `HTTPBearer` only reads the header here (`auto_error=False`): on its own it would
answer a missing or non-Bearer header 401 "Not authenticated" with a WWW-Authenticate header,
and let any other token through. Every refusal is instead ours, raised as `Refused` and
answered by the service's handler (http_service.service_app): the service's 401 detail, and
429 with Retry-After before it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from automates.platform.http_limits import CallerLimits, Refused, caller_address, token_key

_BEARER = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class BearerToken:
    """A FastAPI dependency (`Depends(BearerToken(...))`) admitting callers of one `token`."""

    token: str = field(repr=False)  # never in a repr, hence never in a log or a traceback
    callers: CallerLimits
    credential: str  # what a 429 calls the token's window: "too many requests from this ..."
    refusal: str  # the 401's detail

    async def __call__(
        self,
        request: Request,
        sent: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        self.callers.check("address", caller_address(request))
        given = sent.credentials if sent is not None else ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise Refused(401, self.refusal)
        # Only the one token gets this far: its window is keyed by its digest, never by itself.
        self.callers.check(self.credential, token_key(self.token))
