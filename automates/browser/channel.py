"""The worker's calls to the server side, through the gate: claim, second factor, finish.

The gate's address and the worker's credential are the ones Prefect itself uses on the worker
(PREFECT_API_URL, PREFECT_API_KEY), so a residential machine needs nothing else. Bodies go as
JSON in the request, never as a command line.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL

from automates.errors import BrowserJobError

SECOND_FACTOR_POLL_SECONDS = 0.5


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail)[:500] if detail else str(response.status_code)


class GateChannel:
    def __init__(self, gate_url: str, token: str | None, job_id: uuid.UUID, host: str) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=f"{gate_url.rstrip('/')}/automates/browser/jobs/{job_id}",
            headers=headers,
            timeout=30.0,
            trust_env=False,
        )
        self.host = host

    @classmethod
    def from_prefect_settings(cls, job_id: uuid.UUID, host: str) -> GateChannel:
        api_url = PREFECT_API_URL.value() or ""
        return cls(
            api_url.removesuffix("/").removesuffix("/api"), PREFECT_API_KEY.value(), job_id, host
        )

    async def __aenter__(self) -> GateChannel:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            response = await self._http.post(path, json={"host": self.host, **body})
        except httpx.HTTPError as error:
            raise BrowserJobError(f"cannot reach the gate for {path}: {error}") from None
        if response.status_code in (401, 403):
            raise BrowserJobError(f"the gate refused {path}: {response.status_code}")
        return response

    async def claim(self) -> dict[str, Any] | None:
        """The job's kind, payload and timeout; None when another worker has it already."""
        response = await self._post("/claim", {})
        if response.status_code == 409:
            return None
        if response.status_code == 422:  # the server side could not open the payload
            raise BrowserJobError(f"the gate refused /claim: {_detail(response)}")
        response.raise_for_status()
        claimed: dict[str, Any] = response.json()
        return claimed

    async def second_factor(self, wait_seconds: float) -> str:
        """The code the server side found in the job's mailbox, waiting for it to arrive."""
        deadline = time.monotonic() + wait_seconds
        while True:
            response = await self._post("/second-factor", {})
            if response.status_code == 200:
                code: str = response.json()["code"]
                return code
            if response.status_code != 404 or time.monotonic() > deadline:
                raise BrowserJobError(
                    f"no second-factor code reached the mailbox ({response.status_code})"
                )
            await asyncio.sleep(SECOND_FACTOR_POLL_SECONDS)

    async def finish(
        self,
        status: str,
        result: dict[str, Any] | None,
        error: str | None,
        counters: dict[str, int],
    ) -> None:
        response = await self._post(
            "/finish",
            {"status": status, "result": result, "error": error, "counters": counters},
        )
        if response.status_code != 200:
            raise BrowserJobError(f"the gate did not record the job's end: {response.status_code}")
