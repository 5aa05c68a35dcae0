"""The webhook through real HTTP: started as `automates up` starts it, against the real server,
its runs completed by a real worker; its callers made, rotated and revoked with the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from automates.platform import components
from automates.settings import Settings
from automates.settings.groups import WebhookSettings
from automates.sync import sync
from automates.webhook.token import digest, legacy_token_path
from tests.conftest import free_port
from tests.fixtures.commands import invoke, invoke_json
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, runs_of, store_rows, wait_for


@pytest.fixture
def hooked(server: Settings, project: Project, worker: str) -> Iterator[Settings]:
    """A project with two webhook automates and one without, synced, and its webhook running."""
    one_off: dict[str, Any] = {"kind": "oneshot", "schedules": [], "work_pool": worker}
    project.declare(
        automate("hooked", webhook=True, **one_off),
        automate("also-hooked", webhook=True, **one_off),
        automate("closed", **one_off),
    )
    settings = project.settings(server, webhook=WebhookSettings(port=free_port()))
    asyncio.run(sync(settings, settings.database_url or ""))
    assert components.start_webhook(settings)
    yield settings
    components.webhook(settings).stop()


def _post(settings: Settings, name: str, token: str | None, **body: Any) -> httpx.Response:
    base = f"http://{settings.webhook.host}:{settings.webhook.port}/automates"
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{base}/{name}/runs", headers=headers, **body)


def _ended(settings: Settings, run_id: str) -> Any:
    def done() -> Any:
        return [
            r
            for r in runs_of(settings, "hello/hooked") + runs_of(settings, "hello/also-hooked")
            if str(r.id) == run_id and r.state and r.state.is_final()
        ]

    [run] = wait_for(done, 60, f"the webhook's run {run_id}")
    return run


def test_webhook_starts_only_declared_automates_with_valid_parameters(hooked: Settings) -> None:
    token = invoke_json(cli_env(hooked), "webhook", "add", "ci")["token"]

    def post(name: str, sent: str | None, **body: Any) -> httpx.Response:
        return _post(hooked, name, sent, **body)

    assert post("hooked", None, json={}).status_code == 401
    assert post("hooked", "not-the-token", json={}).status_code == 401
    assert post("nowhere", None, json={}).status_code == 401  # names do not leak
    assert post("nowhere", token, json={}).status_code == 404
    closed = post("closed", token, json={})
    assert closed.status_code == 404
    assert closed.json()["detail"] == "no automate named 'closed' accepts webhook runs"

    not_an_object = post("hooked", token, content=b"[1, 2]")
    assert not_an_object.status_code == 422
    refused = post("hooked", token, json={"greeting": 5, "extra": True})
    assert refused.status_code == 422
    assert {e["parameter"] for e in refused.json()["errors"]} == {"greeting", "extra"}
    assert runs_of(hooked, "hello/hooked") == []

    created = post("hooked", token, json={"greeting": "from the hook"})
    assert created.status_code == 201, created.text
    run = _ended(hooked, created.json()["flow_run_id"])
    assert run.state_name == "Completed"
    assert run.parameters == {"greeting": "from the hook"}
    assert {"trigger:webhook", "principal:webhook:ci"} <= set(run.tags)


def test_each_caller_has_its_own_token_limited_and_revocable_at_once(hooked: Settings) -> None:
    env = cli_env(hooked)
    # Bad input is refused naming the field, and changes nothing.
    for args, why in [
        (("Not A Slug",), "a name is a slug"),
        (("github", "--automate", "closed"), "--automate closed: not declared with `webhook"),
        (("github", "--automate", "nowhere"), "--automate nowhere"),
    ]:
        answer = invoke(env, "webhook", "add", *args, code=2)
        assert why in answer.stdout + answer.stderr
    assert invoke_json(env, "webhook", "list") == {"callers": []}

    github = invoke_json(env, "webhook", "add", "github", "--automate", "hooked")
    billing = invoke_json(env, "webhook", "add", "billing")
    assert (github["automates"], billing["automates"]) == (["hooked"], None)
    again = invoke(env, "webhook", "add", "github", code=2)
    assert "exists" in again.stdout + again.stderr

    # A caller limited to some automates learns nothing of the others.
    limited = _post(hooked, "also-hooked", github["token"], json={})
    assert limited.status_code == 404
    assert limited.json()["detail"] == "no automate named 'also-hooked' accepts webhook runs"
    first = _post(hooked, "hooked", github["token"], json={})
    second = _post(hooked, "also-hooked", billing["token"], json={})
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert "principal:webhook:github" in _ended(hooked, first.json()["flow_run_id"]).tags
    assert "principal:webhook:billing" in _ended(hooked, second.json()["flow_run_id"]).tags

    # Revoked: refused from the next request on; the caller stays listed, its use recorded.
    invoke_json(env, "webhook", "revoke", "github")
    assert _post(hooked, "hooked", github["token"], json={}).status_code == 401
    listed = {c["name"]: c for c in invoke_json(env, "webhook", "list")["callers"]}
    assert listed["github"]["state"].startswith("revoked")
    assert listed["github"]["revoked_by"] and listed["github"]["last_used_at"]
    assert listed["billing"]["state"] == "active"
    # The store keeps digests only; no listing prints a token.
    printed = invoke(env, "webhook", "list", "--json").stdout
    assert github["token"] not in printed and billing["token"] not in printed
    kept = store_rows(hooked, "SELECT name, token_sha256 FROM automates.webhook_callers")
    assert {r["token_sha256"] for r in kept} == {digest(github["token"]), digest(billing["token"])}

    # Rotated: the old token stops, the new one works, the caller's limits are kept.
    rotated = invoke_json(env, "webhook", "rotate", "billing")
    assert _post(hooked, "hooked", billing["token"], json={}).status_code == 401
    third = _post(hooked, "hooked", rotated["token"], json={})
    assert third.status_code == 201, third.text
    _ended(hooked, third.json()["flow_run_id"])


def test_the_shared_token_of_earlier_versions_becomes_the_caller_default(
    hooked: Settings,
) -> None:
    components.webhook(hooked).stop()
    legacy = legacy_token_path(hooked)
    legacy.write_text("an-old-shared-token-of-32-characters\n")
    legacy.chmod(0o600)
    assert components.start_webhook(hooked)

    assert not legacy.exists()  # moved into the store, as its digest
    [caller] = invoke_json(cli_env(hooked), "webhook", "list")["callers"]
    assert (caller["name"], caller["created_by"]) == ("default", "webhook.token")
    answer = _post(hooked, "hooked", "an-old-shared-token-of-32-characters", json={})
    assert answer.status_code == 201, answer.text
    assert "principal:webhook:default" in _ended(hooked, answer.json()["flow_run_id"]).tags
