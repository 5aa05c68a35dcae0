"""The one bearer check and the one request log of the gate and the webhook, on a small app."""

from __future__ import annotations

import logging

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from automates.platform.http_auth import BearerToken
from automates.platform.http_limits import CallerLimits, Refused
from automates.platform.http_service import service_app

TOKEN = "a-token-of-twenty-chars"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
log = logging.getLogger("tests.http_auth")


def _app(rate: str = "100/hour") -> FastAPI:
    check = BearerToken(
        TOKEN, CallerLimits(rate, "AUTOMATES_TEST_RATE"), credential="token", refusal="go away"
    )
    app = service_app(log, dependencies=[Depends(check)])

    @app.get("/thing")
    async def thing() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/refused")
    async def refused() -> None:
        raise Refused(409, "not now", {"Retry-After": "5"})

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"X": TOKEN}],
)
def test_a_caller_without_the_token_gets_the_services_own_401(headers: dict[str, str]) -> None:
    answer = TestClient(_app()).get("/thing", headers=headers)
    assert (answer.status_code, answer.json()) == (401, {"detail": "go away"})
    assert "www-authenticate" not in answer.headers  # as before FastAPI: no challenge


def test_the_token_lets_the_caller_in() -> None:
    client = TestClient(_app())
    assert client.get("/thing", headers=GOOD).json() == {"status": "ok"}
    # The scheme's name is case-insensitive (RFC 9110), as HTTPBearer reads it.
    assert client.get("/thing", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_an_address_is_limited_before_its_token_is_checked() -> None:
    client = TestClient(_app("2/hour"), client=("10.0.0.1", 1))
    guesses = [client.get("/thing", headers={"Authorization": "Bearer guess"}) for _ in range(3)]
    assert [g.status_code for g in guesses] == [401, 401, 429]
    assert "too many requests from this address" in guesses[-1].json()["detail"]
    assert 0 < int(guesses[-1].headers["Retry-After"]) <= 3600


def test_the_token_has_its_own_window_whatever_the_address() -> None:
    app = _app("2/hour")
    answers = [
        TestClient(app, client=(f"10.0.0.{n}", 1)).get("/thing", headers=GOOD) for n in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "too many requests from this token" in answers[-1].json()["detail"]


def test_a_refusal_is_answered_as_json_with_its_headers() -> None:
    answer = TestClient(_app()).get("/refused", headers=GOOD)
    assert (answer.status_code, answer.json()) == (409, {"detail": "not now"})
    assert answer.headers["Retry-After"] == "5"


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_no_schema_or_docs_route_is_served(path: str) -> None:
    assert TestClient(_app()).get(path, headers=GOOD).status_code == 404


def test_each_request_is_logged_without_its_query_or_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    with caplog.at_level(logging.INFO, logger=log.name):
        client.get("/thing?code=123456", headers=GOOD)
        client.get("/thing")
        client.get("/broken", headers=GOOD)
    lines = [r.getMessage() for r in caplog.records if r.name == log.name]
    assert lines == ["GET /thing -> 200", "GET /thing -> 401", "GET /broken -> 500"]


def test_the_token_is_never_in_a_repr() -> None:
    check = BearerToken(TOKEN, CallerLimits("1/second", "X"), credential="token", refusal="no")
    assert TOKEN not in repr(check)
