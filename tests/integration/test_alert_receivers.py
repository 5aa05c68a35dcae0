"""Real sends through apprise into real receivers on loopback.

Slack, Discord and Teams go to their real https hosts as apprise hard-codes them, through the
HTTP sink acting as an intercepting proxy (HTTPS_PROXY and REQUESTS_CA_BUNDLE, in this process
or in a child one); the generic webhook goes there too, or straight to the sink over http;
e-mail goes to aiosmtpd. Every wait is on the sink's condition, never a guessed sleep.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from automates.alerts.channels import Channel, Envelope, SendOutcome, check_url, send
from tests.conftest import REPO
from tests.fixtures.receivers import HttpSink, ReceivedRequest, Reply, SmtpSecurity, SmtpSink
from tests.fixtures.service_urls import DISCORD, SLACK, TEAMS

SECRET_PIECES = ("S3cr3t", "112233445566778899", "0f1e2d3c4b5a")
TIMEOUT = 30.0  # generous: a loaded two-core machine must not turn a success into a timeout

ENVELOPE = Envelope(
    title="Run failed: nightly",
    body="nightly failed with exit code 2\nRun: http://ui.test/runs/flow-run/1",
    idempotency_key="automates-alert-7-ops",
    fields={"alert_id": "7", "kind": "run_failed", "run_url": "http://ui.test/runs?a=1&b=%41"},
)


@pytest.fixture
def proxied(http_sink: HttpSink) -> Iterator[HttpSink]:
    """The sink, with this process sending every https request through it."""
    with http_sink.environment():
        yield http_sink


def assert_no_secret(text: str) -> None:
    for piece in SECRET_PIECES:
        assert piece not in text, text


def test_slack_reaches_hooks_slack_com(proxied: HttpSink) -> None:
    outcome = send(Channel.SLACK, {}, {"url": SLACK}, ENVELOPE, TIMEOUT)

    assert outcome == SendOutcome(ok=True, detail="sent through Slack")
    (request,) = proxied.wait_for(1)
    assert (request.scheme, request.host, request.method) == ("https", "hooks.slack.com", "POST")
    assert request.path == "/services/T0ABCDEF1/B0ABCDEF2/S3cr3tSlackTokenXyz0123"
    (attachment,) = request.json()["attachments"]
    assert attachment["title"] == ENVELOPE.title
    assert attachment["text"] == ENVELOPE.body


def test_teams_reaches_the_workflow_with_its_signature(proxied: HttpSink) -> None:
    assert send(Channel.TEAMS, {}, {"url": TEAMS}, ENVELOPE, TIMEOUT).ok

    (request,) = proxied.wait_for(1)
    assert (request.scheme, request.host) == ("https", "prod-42.westeurope.logic.azure.com")
    assert request.path.startswith(
        "/workflows/0f1e2d3c4b5a69788796a5b4c3d2e1f0/triggers/manual/paths/invoke?"
    )
    assert "sig=S3cr3tTeamsSignature_0123456789-abcdefghij" in request.path
    card = json.dumps(request.json())
    assert ENVELOPE.title in card and "nightly failed with exit code 2" in card


def test_discord_reaches_discord_com(proxied: HttpSink) -> None:
    assert send(Channel.DISCORD, {}, {"url": DISCORD}, ENVELOPE, TIMEOUT).ok

    (request,) = proxied.wait_for(1)
    assert (request.scheme, request.host) == ("https", "discord.com")
    assert request.path == "/api/webhooks/112233445566778899/S3cr3tDiscordToken-_0123456789abc"
    content = request.json()["content"]
    assert ENVELOPE.title in content and "nightly failed with exit code 2" in content


def sent_to_webhook(sink: HttpSink, url: str) -> ReceivedRequest:
    """ENVELOPE sent to the webhook at `url`: the one request `sink` received, checked for the
    idempotency key and the envelope's title, body and fields."""
    assert send(Channel.WEBHOOK, {}, {"url": url}, ENVELOPE, TIMEOUT).ok

    (request,) = sink.wait_for(1)
    assert request.method == "POST"
    assert request.header("Idempotency-Key") == "automates-alert-7-ops"
    assert request.header("Content-Type") == "application/json"
    payload = request.json()
    assert (payload["title"], payload["message"]) == (ENVELOPE.title, ENVELOPE.body)
    assert {key: payload[key] for key in ENVELOPE.fields} == dict(ENVELOPE.fields)
    return request


def test_a_plain_http_webhook_gets_the_key_and_the_fields(http_sink: HttpSink) -> None:
    url = f"{http_sink.base_url}/in/hook-S3cr3tPathToken1?token=q%2B1"

    request = sent_to_webhook(http_sink, url)
    assert (request.scheme, request.host) == ("http", "127.0.0.1")
    assert request.path == "/in/hook-S3cr3tPathToken1?token=q%2B1"


def test_an_https_webhook_gets_the_key_and_the_fields(proxied: HttpSink) -> None:
    request = sent_to_webhook(proxied, "https://hooks.example.test/in/hook")
    assert (request.scheme, request.host) == ("https", "hooks.example.test")
    assert request.path == "/in/hook"


def test_a_plain_http_webhook_to_another_host_goes_through_the_proxy(proxied: HttpSink) -> None:
    request = sent_to_webhook(proxied, "http://hooks.example.test/in")
    assert (request.scheme, request.host, request.path) == ("http", "hooks.example.test", "/in")


@pytest.mark.parametrize(
    ("channel", "url", "said"),
    [
        (Channel.SLACK, SLACK, "Failed to send to Slack"),
        (Channel.TEAMS, TEAMS, "Failed to send Workflows notification"),
        (Channel.DISCORD, DISCORD, "Failed to send Discord notification"),
        (Channel.WEBHOOK, "https://hooks.example.test/S3cr3tPathToken1", "Failed to send JSON"),
    ],
)
def test_a_receiver_answering_500_is_a_failure_that_says_so_without_the_secret(
    proxied: HttpSink, channel: Channel, url: str, said: str
) -> None:
    proxied.respond(500, b"boom")

    outcome = send(channel, {}, {"url": url}, ENVELOPE, TIMEOUT)

    assert not outcome.ok
    assert said in outcome.detail and "500" in outcome.detail
    assert_no_secret(outcome.detail)
    assert len(proxied.requests) == 1  # apprise tried once: retrying is the deliverer's


def test_a_receiver_that_recovers_is_reached_on_the_next_send(proxied: HttpSink) -> None:
    proxied.fail_until(float("inf"), status=503)
    assert not send(Channel.SLACK, {}, {"url": SLACK}, ENVELOPE, TIMEOUT).ok

    proxied.fail_until(time.monotonic(), status=503)  # a deadline already past: it has recovered
    assert send(Channel.SLACK, {}, {"url": SLACK}, ENVELOPE, TIMEOUT).ok
    assert len(proxied.wait_for(2)) == 2


def test_concurrent_sends_each_report_their_own_failure(proxied: HttpSink) -> None:
    both_arrived = threading.Barrier(2, timeout=60)

    def answer(request: ReceivedRequest) -> Reply:
        both_arrived.wait()  # the two sends are inside apprise at the same time
        return Reply(500 if request.host == "hooks.slack.com" else 404, b"no")

    proxied.answer_with(answer)
    outcomes: dict[Channel, SendOutcome] = {}

    def run(channel: Channel, url: str) -> None:
        outcomes[channel] = send(channel, {}, {"url": url}, ENVELOPE, TIMEOUT)

    threads = [
        threading.Thread(target=run, args=(Channel.SLACK, SLACK)),
        threading.Thread(target=run, args=(Channel.DISCORD, DISCORD)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    slack, discord = outcomes[Channel.SLACK], outcomes[Channel.DISCORD]
    assert not slack.ok and "500" in slack.detail and "Discord" not in slack.detail
    assert not discord.ok and "404" in discord.detail and "Slack" not in discord.detail


def test_a_send_to_a_closed_port_fails_within_the_timeout() -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/x"
        assert check_url(Channel.WEBHOOK, {}, {"url": url}) is None  # apprise loaded, untimed
        started = time.monotonic()
        outcome = send(Channel.WEBHOOK, {}, {"url": url}, ENVELOPE, TIMEOUT)
        elapsed = time.monotonic() - started

    assert not outcome.ok
    assert "Connection error" in outcome.detail
    assert elapsed < TIMEOUT


def test_a_receiver_that_never_answers_is_given_up_after_the_read_timeout(
    http_sink: HttpSink,
) -> None:
    released = threading.Event()
    http_sink.answer_with(lambda request: Reply() if released.wait(120) else Reply(504))
    url = f"{http_sink.base_url}/x"
    assert check_url(Channel.WEBHOOK, {}, {"url": url}) is None  # apprise loaded, untimed
    try:
        started = time.monotonic()
        outcome = send(Channel.WEBHOOK, {}, {"url": url}, ENVELOPE, 1.0)
        elapsed = time.monotonic() - started
    finally:
        released.set()

    assert not outcome.ok and "Connection error" in outcome.detail
    # The send gives up on its own clock: on a loaded machine the sink's thread may record the
    # request only after that.
    http_sink.wait_for(1)
    assert len(http_sink.requests) == 1
    assert 1.0 <= elapsed < 1.0 + 30  # the read timeout, not the sink's two minutes


def test_a_separate_process_reaches_the_sink_through_the_proxy(http_sink: HttpSink) -> None:
    script = (
        "import json, sys\n"
        "from automates.alerts.channels import Channel, Envelope, send\n"
        "envelope = Envelope(title='From a child', body='b', idempotency_key='k', fields={})\n"
        "outcome = send(Channel.SLACK, {}, {'url': sys.argv[1]}, envelope, 30)\n"
        "print(json.dumps({'ok': outcome.ok, 'detail': outcome.detail}))\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, SLACK],
        env={**os.environ, **http_sink.env()},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.splitlines()[-1]) == {"ok": True, "detail": "sent through Slack"}
    (request,) = http_sink.wait_for(1)
    assert (request.scheme, request.host) == ("https", "hooks.slack.com")
    assert request.json()["attachments"][0]["title"] == "From a child"


def email_options(sink: SmtpSink, security: str, username: str | None) -> dict[str, object]:
    return {
        "host": sink.host,
        "port": sink.port,
        "security": security,
        "username": username,
        "sender": "Automates <alerts@example.test>",
        "to": ["ops+alerts@example.test", "oncall@example.test"],
    }


def test_email_reaches_every_recipient(smtp_sink: SmtpSink) -> None:
    options = email_options(smtp_sink, "none", None)

    assert send(Channel.EMAIL, options, {}, ENVELOPE, TIMEOUT).ok

    mails = smtp_sink.wait_for(2)  # apprise sends one message per recipient
    assert sorted(r for mail in mails for r in mail.recipients) == [
        "oncall@example.test",
        "ops+alerts@example.test",
    ]
    for mail in mails:
        assert mail.sender == "alerts@example.test"
        assert mail.headers["from"] == "Automates <alerts@example.test>"
        assert mail.subject == ENVELOPE.title
        assert mail.body.replace("\r\n", "\n").strip() == ENVELOPE.body
        assert (mail.login, mail.encrypted) == (None, False)


PASSWORD = "p@ss:w/rd?&%#S3cr3t"


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_logs_in_over_tls_with_a_password_full_of_url_characters(
    security: SmtpSecurity,
) -> None:
    with (
        SmtpSink(security, credentials=("alerts@example.test", PASSWORD)) as sink,
        sink.environment(),
    ):
        options = email_options(sink, security, "alerts@example.test")

        assert send(Channel.EMAIL, options, {"password": PASSWORD}, ENVELOPE, TIMEOUT).ok

        for mail in sink.wait_for(2):
            assert (mail.login, mail.encrypted) == ("alerts@example.test", True)


def test_a_refused_login_fails_without_the_password() -> None:
    with (
        SmtpSink("starttls", credentials=("alerts@example.test", "another")) as sink,
        sink.environment(),
    ):
        options = email_options(sink, "starttls", "alerts@example.test")

        outcome = send(Channel.EMAIL, options, {"password": PASSWORD}, ENVELOPE, TIMEOUT)

        assert not outcome.ok and "127.0.0.1" in outcome.detail
        assert_no_secret(outcome.detail)
        assert sink.messages == []
