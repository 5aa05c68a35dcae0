"""The address rule (decision 0028) where it matters: the operator's command refuses internal
targets with nothing created, and a real worker's Chromium, sent to an allowed page, never
reaches an internal address that page redirects or sub-requests to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from automates.browser.enqueue import enqueue_job
from tests.fixtures.browser_jobs import nothing_created
from tests.fixtures.browser_layer import Residential, wait_for_end
from tests.fixtures.browser_site import Sink, Site, serve_sink
from tests.fixtures.commands import invoke, run_module
from tests.fixtures.servers import cli_env


@pytest.fixture
def sinks() -> Iterator[tuple[Sink, Sink]]:
    """One sink on another loopback host (127.0.0.2), one on the test site's host (127.0.0.1)
    but another port: browser_allowed_hosts allows the site's host:port, neither of these."""
    with serve_sink("127.0.0.2") as other_host, serve_sink("127.0.0.1") as other_port:
        yield other_host, other_port


def _enqueue(env: dict[str, str], kind: str, payload: dict[str, str]) -> tuple[int, str]:
    """`automates browser enqueue KIND --payload JSON --json` as the operator runs it, in a
    process of its own."""
    done = run_module("automates.cli", *_enqueue_args(kind, payload), env=env)
    if done.returncode == 0:
        return 0, done.stdout
    return done.returncode, str(json.loads(done.stdout).get("error")) + done.stderr


def _refusal(env: dict[str, str], kind: str, payload: dict[str, str]) -> str:
    """The same command's refusal (exit 2), run in-process: eight of them would otherwise cost
    eight interpreter start-ups, which the accepted case still pays once."""
    done = invoke(env, *_enqueue_args(kind, payload), code=2)
    return str(json.loads(done.stdout).get("error")) + done.stderr


def _enqueue_args(kind: str, payload: dict[str, str]) -> list[str]:
    return ["browser", "enqueue", kind, "--payload", json.dumps(payload), "--json"]


def test_the_command_refuses_internal_targets_naming_kind_field_and_why(
    browser_layer: Residential, browser_site: Site
) -> None:
    settings = browser_layer.settings
    # The operator's environment, with the test site allowed as the fixtures allow it.
    env = {
        **cli_env(settings),
        "AUTOMATES_BROWSER_ALLOWED_HOSTS": json.dumps(settings.browser.allowed_hosts),
    }
    server_port = urlsplit(settings.api_url).port
    login = {"username": "ada", "password": "pw", "mailbox": "m@example.org"}
    refused = [
        (
            "page_snapshot",
            {"url": "http://169.254.169.254/latest/meta-data/"},
            "'url'",
            "link-local",
        ),
        (
            "page_snapshot",
            {"url": f"http://127.0.0.1:{server_port}/api/admin/settings"},
            "'url'",
            "loopback",
        ),
        ("page_snapshot", {"url": "http://localhost:4200/"}, "'url'", "loopback"),
        ("page_snapshot", {"url": "http://2130706433/"}, "'url'", "loopback"),
        ("page_snapshot", {"url": "http://0x7f.1/"}, "'url'", "loopback"),
        ("page_snapshot", {"url": "http://0.0.0.0:4200/"}, "'url'", "unspecified"),
        (
            "portal_login",
            {"login_url": "https://10.1.2.3/login", **login},
            "'login_url'",
            "private",
        ),
        ("portal_login", {"login_url": "http://192.168.1.1/", **login}, "'login_url'", "private"),
    ]
    with nothing_created(settings):
        for kind, payload, field, why in refused:
            said = _refusal(env, kind, payload)
            assert f"kind {kind!r}" in said and field in said and why in said, said
            assert "browser_allowed_hosts" in said, said
    # The allowed site itself is accepted by the same command.
    code, said = _enqueue(env, "page_snapshot", {"url": f"{browser_site.url}/article"})
    assert code == 0, said
    wait_for_end(settings, json.loads(said)["id"])


def test_a_redirect_from_an_allowed_page_to_loopback_never_reaches_it(
    browser_layer: Residential, browser_site: Site, sinks: tuple[Sink, Sink]
) -> None:
    other_host, other_port = sinks
    targets = [
        f"{other_host.url}/latest/meta-data/",
        f"{other_port.url}/api/admin/settings",  # the site's own host, another port
        f"http://localhost:{urlsplit(other_port.url).port}/by-name",
    ]
    ids = [
        enqueue_job(
            browser_layer.settings, "page_snapshot", {"url": f"{browser_site.url}/redirect?to={to}"}
        ).id
        for to in targets
    ]
    for job_id, to in zip(ids, targets, strict=True):
        done = wait_for_end(browser_layer.settings, job_id)
        assert done.status == "failed", done
        host_port = f"{urlsplit(to).hostname}:{urlsplit(to).port}"
        assert f"the address rule refused {host_port}" in (done.error or ""), done.error
        assert "loopback address, not in browser_allowed_hosts" in (done.error or "")
        assert done.counters.get("requests_refused", 0) >= 1
    assert other_host.hits == [] and other_port.hits == []


def test_sub_requests_of_an_allowed_page_to_loopback_never_reach_it(
    browser_layer: Residential, browser_site: Site, sinks: tuple[Sink, Sink]
) -> None:
    other_host, _ = sinks
    job = enqueue_job(
        browser_layer.settings,
        "page_snapshot",
        {"url": f"{browser_site.url}/embeds?src={other_host.url}"},
    )
    done = wait_for_end(browser_layer.settings, job.id)
    assert done.status == "done", done  # the page itself is allowed and loads
    assert done.result is not None and "embeds" in done.result["text"]
    assert done.counters.get("requests_refused", 0) >= 2  # the image and the frame, at least
    assert other_host.hits == []
