"""The webhook through real HTTP: started as `automates up` starts it, against the real server,
its runs completed by a real worker."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from automates.platform import components
from automates.settings import Settings
from automates.settings.groups import WebhookSettings
from automates.sync import sync
from automates.webhook.token import token_path, webhook_token
from tests.conftest import free_port
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import runs_of, wait_for


@pytest.fixture
def hooked(server: Settings, project: Project, worker: str) -> Iterator[Settings]:
    """A project with a webhook automate and one without, synced, and its webhook running."""
    one_off: dict[str, Any] = {"kind": "oneshot", "schedules": [], "work_pool": worker}
    project.declare(automate("hooked", webhook=True, **one_off), automate("closed", **one_off))
    settings = project.settings(server, webhook=WebhookSettings(port=free_port()))
    asyncio.run(sync(settings, settings.database_url or ""))
    token_path(settings).unlink(missing_ok=True)
    assert components.start_webhook(settings)
    yield settings
    components.webhook(settings).stop()


def test_webhook_starts_only_declared_automates_with_valid_parameters(hooked: Settings) -> None:
    token = webhook_token(hooked)  # generated once by the webhook, into the data folder
    assert stat.S_IMODE(token_path(hooked).stat().st_mode) == 0o600

    base = f"http://{hooked.webhook.host}:{hooked.webhook.port}/automates"
    bearer = {"Authorization": f"Bearer {token}"}

    def post(name: str, headers: dict[str, str], **body: Any) -> httpx.Response:
        return httpx.post(f"{base}/{name}/runs", headers=headers, **body)

    assert post("hooked", {}, json={}).status_code == 401
    assert post("hooked", {"Authorization": "Bearer not-the-token"}, json={}).status_code == 401
    assert post("nowhere", {}, json={}).status_code == 401  # names do not leak
    assert post("nowhere", bearer, json={}).status_code == 404
    closed = post("closed", bearer, json={})
    assert closed.status_code == 404
    assert closed.json()["detail"] == "no automate named 'closed' accepts webhook runs"

    not_an_object = post("hooked", bearer, content=b"[1, 2]")
    assert not_an_object.status_code == 422
    refused = post("hooked", bearer, json={"greeting": 5, "extra": True})
    assert refused.status_code == 422
    assert {e["parameter"] for e in refused.json()["errors"]} == {"greeting", "extra"}
    assert runs_of(hooked, "hello/hooked") == []

    created = post("hooked", bearer, json={"greeting": "from the hook"})
    assert created.status_code == 201, created.text
    run_id = created.json()["flow_run_id"]

    def done() -> Any:
        return [r for r in runs_of(hooked, "hello/hooked") if r.state and r.state.is_final()]

    [run] = wait_for(done, 60, "the webhook's run")
    assert (str(run.id), run.state_name) == (run_id, "Completed")
    assert run.parameters == {"greeting": "from the hook"}
    assert "trigger:webhook" in run.tags
