"""The webhook's bounds through real HTTP (issue 12, finding 5): a body over the limit is
refused unread, whether it declares its length or is chunked; a body that never finishes is
refused at the read timeout; too-deep parameters are refused; a too-fast caller, by address or
by token, gets 429 with Retry-After. Nothing refused starts a run."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from automates.platform import components
from automates.settings import Settings
from automates.sync import sync
from tests.conftest import free_port
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import runs_of

SIXTY_MB = 60 * 1024 * 1024
CHUNK = b"x" * (64 * 1024)


def _webhook(server: Settings, project: Project, worker: str, **limits: Any) -> Settings:
    one_off: dict[str, Any] = {"kind": "oneshot", "schedules": [], "work_pool": worker}
    project.declare(automate("hooked", webhook=True, **one_off))
    token = SecretStr(secrets.token_urlsafe(24))
    webhook = {"port": free_port(), "token": token, **limits}
    settings = project.settings(server, webhook=webhook)
    asyncio.run(sync(settings, settings.database_url or ""))
    assert components.start_webhook(settings)
    return settings


@pytest.fixture
def bounded(server: Settings, project: Project, worker: str) -> Iterator[Settings]:
    settings = _webhook(server, project, worker, http_read_timeout_seconds=2)
    yield settings
    components.webhook(settings).stop()


@pytest.fixture
def slow_to_refill(server: Settings, project: Project, worker: str) -> Iterator[Settings]:
    settings = _webhook(server, project, worker, rate_limit="3/hour")
    yield settings
    components.webhook(settings).stop()


def _url(settings: Settings) -> str:
    return f"http://{settings.webhook.host}:{settings.webhook.port}/automates/hooked/runs"


def _bearer(settings: Settings) -> dict[str, str]:
    assert settings.webhook.token is not None
    return {"Authorization": f"Bearer {settings.webhook.token.get_secret_value()}"}


def _sixty_megabytes() -> Iterator[bytes]:
    """60 MB, produced as it is sent: the test never holds it."""
    for _ in range(SIXTY_MB // len(CHUNK)):
        yield CHUNK


def test_oversized_endless_and_too_deep_bodies_are_refused_and_start_nothing(
    bounded: Settings,
) -> None:
    url, bearer = _url(bounded), _bearer(bounded)
    with httpx.Client(timeout=120) as client:
        declared = client.post(
            url, headers={**bearer, "Content-Length": str(SIXTY_MB)}, content=_sixty_megabytes()
        )
        assert declared.status_code == 413, declared.text
        assert "over 65536 bytes" in declared.json()["detail"]
        chunked = client.post(url, headers=bearer, content=_sixty_megabytes())  # no length
        assert chunked.status_code == 413, chunked.text

        deep = client.post(
            url, headers=bearer, content=b'{"greeting": ' + b"[" * 40 + b"]" * 40 + b"}"
        )
        assert deep.status_code == 422
        assert "nest at most 32" in deep.json()["detail"]
        deeper = client.post(url, headers=bearer, content=b"[" * 60_000)  # the parser's limit
        assert deeper.status_code == 422

    # A body that starts and never finishes: answered 408 at the read timeout, not held open.
    head = (
        f"POST /automates/hooked/runs HTTP/1.1\r\nHost: x\r\n"
        f'Authorization: {bearer["Authorization"]}\r\nContent-Length: 100\r\n\r\n{{"gree'
    ).encode()
    with socket.create_connection((bounded.webhook.host, bounded.webhook.port), 60) as slow:
        slow.sendall(head)
        answer = b""
        while chunk := slow.recv(4096):  # the server closes after answering
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]

    # A head that never finishes is dropped at the read timeout too.
    with socket.create_connection((bounded.webhook.host, bounded.webhook.port), 60) as slow:
        slow.sendall(b"POST /automates/hooked/runs HTTP/1.1\r\nHost: x\r\n")
        assert slow.recv(4096) == b""  # closed, with no answer

    assert runs_of(bounded, "hello/hooked") == []
    fits = httpx.post(url, headers=bearer, json={"greeting": "still serving"})
    assert fits.status_code == 201, fits.text


def test_a_too_fast_caller_gets_429_and_the_runs_stay_bounded(slow_to_refill: Settings) -> None:
    url, bearer = _url(slow_to_refill), _bearer(slow_to_refill)

    def post(address: str, headers: dict[str, str]) -> httpx.Response:
        # uvicorn takes the client address from X-Forwarded-For sent by a local proxy.
        return httpx.post(url, headers={**headers, "X-Forwarded-For": address}, json={})

    answers = [post("203.0.113.1", bearer) for _ in range(6)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429, 429]
    refused = answers[-1]
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert "too many requests from this address" in refused.json()["detail"]
    # Guessing the token is limited per address too: the 429 comes before the 401.
    assert post("203.0.113.1", {"Authorization": "Bearer guess"}).status_code == 429
    assert post("203.0.113.2", {"Authorization": "Bearer guess"}).status_code == 401
    # The token's own window is spent as well: from a fresh address it is still refused.
    by_token = post("203.0.113.3", bearer)
    assert by_token.status_code == 429
    assert "too many requests from this caller" in by_token.json()["detail"]
    assert len(runs_of(slow_to_refill, "hello/hooked")) == 3
