"""The one way this project opens a Prefect client, with its errors translated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

from automates.errors import ServerError
from automates.server.prefect_patches import apply_all


@asynccontextmanager
async def prefect_client(api_url: str) -> AsyncIterator[PrefectClient]:
    """A client bound to `api_url`, whatever the ambient Prefect profile says."""
    apply_all()  # every process that talks to the server this way gets the workarounds
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        try:
            async with get_client() as client:
                yield client
        except PrefectHTTPStatusError as error:
            raise ServerError(
                f"the Prefect API at {api_url} refused {refused_request(error)}: "
                f"{error.response.status_code} {error.response.text[:300]}"
            ) from error
        except httpx.TransportError as error:
            raise ServerError(
                f"cannot reach the Prefect API at {api_url} ({type(error).__name__}); "
                "is the server up? (`automates up`)"
            ) from error


def refused_request(error: PrefectHTTPStatusError) -> str:
    """The request the Prefect API refused, as `METHOD /path`: never its query or body, which
    may carry a secret (a block's body holds its password)."""
    return f"{error.request.method} {error.request.url.path}"


async def api_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(f"{api_url}/health")
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def api_ready(api_url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """Whether the API can serve, and why not: `/ready` answers 200 only when the server
    reaches its database (`/health` only says that the process answers)."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(f"{api_url}/ready")
    except httpx.HTTPError as error:
        return False, f"unreachable ({type(error).__name__})"
    if response.status_code == 200:
        return True, "ready"
    return False, f"not ready ({response.status_code} on /ready: its database does not answer)"
