"""The gate and the webhook as apps, in process: their only unauthenticated answers are refusals
(and the webhook's health), and a refused caller's body is never read."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from automates.gate.app import GateConfig, create_app
from automates.platform.http_limits import BodyLimits
from automates.webhook.app import WebhookConfig
from automates.webhook.app import create_app as create_webhook

TOKEN = "t" * 20
GOOD = {"Authorization": f"Bearer {TOKEN}"}
NO_DATABASE = "postgresql://nobody@127.0.0.1:1/none"  # never reached by these calls


def _gate() -> FastAPI:
    return create_app(
        GateConfig("http://127.0.0.1:1/api", TOKEN, "residential", NO_DATABASE, BodyLimits(64, 5))
    )


def _webhook(tmp_path: Path) -> FastAPI:
    registry = tmp_path / "registry.yaml"
    registry.write_text("automates: []\n")
    return create_webhook(WebhookConfig("http://127.0.0.1:1/api", registry, None, TOKEN))


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_neither_serves_a_schema_or_docs(path: str, tmp_path: Path) -> None:
    for app in (_gate(), _webhook(tmp_path)):
        assert TestClient(app).get(path, headers=GOOD).status_code == 404


def test_the_gate_refuses_without_the_credential_before_reading_a_body() -> None:
    client = TestClient(_gate())
    claim = f"/automates/browser/jobs/{uuid.uuid4()}/claim"
    oversized = b"x" * 1000
    for path in [claim, "/api/logs/"]:
        refused = client.post(path, content=oversized)
        assert (refused.status_code, refused.json()) == (401, {"detail": "unauthenticated"})
        assert client.post(path, content=oversized, headers=GOOD).status_code == 413


def test_the_gate_answers_a_malformed_job_call_422() -> None:
    answer = TestClient(_gate()).post(
        f"/automates/browser/jobs/{uuid.uuid4()}/claim", json={"hostname": "x"}, headers=GOOD
    )
    assert (answer.status_code, answer.json()) == (
        422,
        {"detail": "fields no worker sends: hostname"},
    )


def test_the_webhook_refuses_without_the_token_and_answers_its_health(tmp_path: Path) -> None:
    client = TestClient(_webhook(tmp_path))
    assert client.get("/health").json() == {"status": "ok"}
    refused = client.post("/automates/anything/runs", json={})
    assert refused.status_code == 401
    assert refused.json() == {"detail": "unauthenticated: send Authorization: Bearer <token>"}
    unknown = client.post("/automates/anything/runs", json={}, headers=GOOD)
    assert unknown.json() == {"detail": "no automate named 'anything' accepts webhook runs"}
