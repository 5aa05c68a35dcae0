"""The apprise URL of every channel, and why a route is refused, without touching the network.

Each URL is read back by apprise itself (instantiating a plugin opens no connection), so what is
checked is what apprise will do with it, not how the string looks. A refusal names the field
and never the secret.
"""

from __future__ import annotations

import logging
from typing import Any

import apprise
import pytest

from automates.alerts.channels import (
    Channel,
    Envelope,
    apprise_url,
    check_url,
    redact,
    send,
)
from tests.fixtures.service_urls import DISCORD, SLACK, TEAMS

WEBHOOK = "https://hook-user:S3cr3t%2Fpw@hooks.example.test:8443/in/S3cr3tPathToken1?token=q%2B1"
PASSWORD = "p@ss:w/rd?&%#S3cr3t"

ENVELOPE = Envelope(
    title="Run failed: nightly",
    body="nightly failed\nRun: http://ui/runs/flow-run/1",
    idempotency_key="automates-alert-7-ops+team",
    fields={"alert_id": "7", "kind": "run_failed", "run_url": "http://ui/runs?a=1&b=%41;c"},
)


def email_options(**overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "host": "smtp.example.test",
        "port": 587,
        "security": "starttls",
        "username": "alerts@example.test",
        "sender": "Automates <alerts@example.test>",
        "to": ["ops+alerts@example.test", "oncall@example.test"],
    }
    return {**options, **overrides}


def loaded(url: str) -> Any:
    plugin = apprise.Apprise.instantiate(url)
    assert plugin is not None, url
    return plugin


@pytest.mark.parametrize(
    ("channel", "url", "plugin", "host"),
    [
        (Channel.SLACK, SLACK, "NotifySlack", "T0ABCDEF1"),
        (Channel.TEAMS, TEAMS, "NotifyWorkflows", "prod-42.westeurope.logic.azure.com"),
        (Channel.DISCORD, DISCORD, "NotifyDiscord", "112233445566778899"),
    ],
)
def test_a_service_url_is_passed_as_given_with_the_timeouts(
    channel: Channel, url: str, plugin: str, host: str
) -> None:
    built = apprise_url(channel, {}, {"url": url}, ENVELOPE, 2.5)

    assert built == f"{url}{'&' if '?' in url else '?'}cto=2.5&rto=2.5"
    read = loaded(built)
    assert type(read).__name__ == plugin
    assert read.host == host
    assert (read.socket_connect_timeout, read.socket_read_timeout) == (2.5, 2.5)
    assert check_url(channel, {}, {"url": url}) is None


def test_the_teams_url_keeps_its_workflow_and_signature() -> None:
    read = loaded(apprise_url(Channel.TEAMS, {}, {"url": TEAMS}, None, 3))

    assert read.workflow == "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert read.signature == "S3cr3tTeamsSignature_0123456789-abcdefghij"
    assert read.port == 443


def test_a_webhook_posts_json_with_the_idempotency_key_and_the_fields() -> None:
    built = apprise_url(Channel.WEBHOOK, {}, {"url": WEBHOOK}, ENVELOPE, 4)

    assert built.startswith("jsons://hook-user:S3cr3t%2Fpw@hooks.example.test:8443/in/")
    read = loaded(built)
    assert read.secure is True
    assert (read.user, read.password) == ("hook-user", "S3cr3t/pw")
    assert read.fullpath == "/in/S3cr3tPathToken1"
    assert read.headers == {"Idempotency-Key": "automates-alert-7-ops+team"}
    assert read.payload_extras == dict(ENVELOPE.fields)  # %41 stays %41: quoted for both decodes
    assert read.params == {"token": "q+1"}  # the URL's own query, passed on, not read as apprise's
    assert (read.socket_connect_timeout, read.socket_read_timeout) == (4.0, 4.0)


def test_a_plain_http_webhook_becomes_json() -> None:
    built = apprise_url(Channel.WEBHOOK, {}, {"url": "http://127.0.0.1:8080/hook"}, None, 1)

    assert built == "json://127.0.0.1:8080/hook?cto=1&rto=1"
    assert loaded(built).secure is False


def test_a_webhook_url_whose_query_names_an_apprise_option_does_not_set_it() -> None:
    read = loaded(apprise_url(Channel.WEBHOOK, {}, {"url": "http://h.test/x?method=GET"}, None, 1))

    assert (read.method, read.params) == ("POST", {"method": "GET"})


def test_fields_may_not_rename_apprise_json_keys() -> None:
    clashing = Envelope(title="t", body="b", idempotency_key="k", fields={"title": "x"})

    with pytest.raises(ValueError, match="title"):
        apprise_url(Channel.WEBHOOK, {}, {"url": "http://h.test/x"}, clashing, 1)


@pytest.mark.parametrize(
    ("security", "schema", "mode"),
    [
        ("starttls", "mailtos", "starttls"),
        ("ssl", "mailtos", "ssl"),
        ("none", "mailto", "insecure"),
    ],
)
def test_email_settings_reach_apprise_intact(security: str, schema: str, mode: str) -> None:
    built = apprise_url(
        Channel.EMAIL, email_options(security=security), {"password": PASSWORD}, ENVELOPE, 6
    )

    assert built.startswith(f"{schema}://alerts%40example.test:")
    read = loaded(built)
    assert (read.user, read.password) == ("alerts@example.test", PASSWORD)
    assert (read.smtp_host, read.port, read.secure_mode) == ("smtp.example.test", 587, mode)
    assert tuple(read.from_addr) == ("Automates", "alerts@example.test")
    assert [address for _, address in read.targets] == [
        "ops+alerts@example.test",
        "oncall@example.test",
    ]
    assert read.notify_format == apprise.NotifyFormat.TEXT
    assert read.socket_connect_timeout == 6.0


def test_email_without_a_login_names_no_user() -> None:
    built = apprise_url(Channel.EMAIL, email_options(username=None), {}, None, 1)

    assert built.startswith("mailtos://smtp.example.test:587/")
    assert loaded(built).password is None


def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        apprise_url(Channel.SLACK, {}, {"url": SLACK}, None, 0)


@pytest.mark.parametrize(
    ("channel", "url", "reason"),
    [
        (Channel.SLACK, "", "url is missing"),
        (Channel.SLACK, "slack://T0ABCDEF1/B0ABCDEF2/S3cr3tSlackTokenXyz0123", "http(s)"),
        (Channel.SLACK, DISCORD, "url is not a Slack incoming-webhook URL"),
        (Channel.SLACK, SLACK.replace("Xyz0123", "Xyz$0123"), "url is not a Slack"),
        (Channel.DISCORD, SLACK, "url is not a Discord webhook URL"),
        (Channel.TEAMS, TEAMS.split("?")[0], "url is not a Teams workflow URL"),
        (Channel.TEAMS, DISCORD, "url is not a Teams workflow URL"),
        (Channel.WEBHOOK, "ftp://files.example.test/S3cr3tPathToken1", "url is not an http(s) URL"),
        (Channel.WEBHOOK, "https://S3cr3tOnlyHost:notaport/x", "url is not a well-formed URL"),
        (Channel.WEBHOOK, SLACK, "url is a slack URL: declare the route with channel slack"),
        (Channel.WEBHOOK, DISCORD, "channel discord"),
        (Channel.WEBHOOK, TEAMS, "channel teams"),
    ],
)
def test_a_url_that_cannot_work_is_refused_naming_the_field(
    channel: Channel, url: str, reason: str
) -> None:
    found = check_url(channel, {}, {"url": url})

    assert found is not None and found.startswith("url ") and reason in found
    for piece in ("S3cr3t", "112233445566778899", "0f1e2d3c4b5a"):
        assert piece not in found


def test_the_slack_refusal_shows_the_expected_form() -> None:
    assert check_url(Channel.SLACK, {}, {"url": DISCORD}) == (
        "url is not a Slack incoming-webhook URL (https://hooks.slack.com/services/…)"
        " (apprise reads it as Discord)"
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"to": []}, "to has no recipient"),
        ({"to": "ops@example.test"}, "to has no recipient"),
        ({"to": ["ops@example.test", "not an address"]}, "to: 'not an address'"),
        ({"sender": "nobody"}, "sender is not an e-mail address"),
        ({"host": ""}, "host is missing"),
        ({"port": 0}, "port must be"),
        ({"port": "587"}, "port must be"),
        ({"security": "tls"}, "security must be"),
    ],
)
def test_email_settings_that_cannot_work_are_refused(overrides: dict[str, Any], field: str) -> None:
    found = check_url(Channel.EMAIL, email_options(**overrides), {"password": PASSWORD})

    assert found is not None and found.startswith(field)
    assert "S3cr3t" not in found


def test_valid_email_and_webhook_routes_pass() -> None:
    assert check_url(Channel.EMAIL, email_options(), {"password": PASSWORD}) is None
    assert check_url(Channel.EMAIL, email_options(username=None, security="none"), {}) is None
    assert check_url(Channel.WEBHOOK, {}, {"url": WEBHOOK}) is None
    assert check_url(Channel.WEBHOOK, {}, {"url": "http://[::1]:8080/x"}) is None


def test_the_log_channel_needs_nothing_and_sends_nothing() -> None:
    assert check_url(Channel.LOG, {}, {}) is None
    assert send(Channel.LOG, {}, {}, ENVELOPE, 1).ok
    with pytest.raises(ValueError):
        apprise_url(Channel.LOG, {}, {}, ENVELOPE, 1)


def test_redact_replaces_a_secret_in_every_quoted_form() -> None:
    secret = "a b/c+d"
    text = f"raw {secret} path a%20b/c%2Bd all a%20b%2Fc%2Bd form a+b%2Fc%2Bd"

    assert redact(text, [secret, ""]) == "raw *** path *** all *** form ***"


def test_redact_prefers_the_longest_secret() -> None:
    assert redact("token=abcdef123456", ["abc", "abcdef123456"]) == "token=***"


def test_what_apprise_says_about_a_bad_url_is_redacted_and_kept_from_other_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = TEAMS.replace("Signature_", "Signature+")  # a signature apprise refuses, quoting it
    caplog.set_level(logging.DEBUG)

    outcome = send(Channel.TEAMS, {}, {"url": bad}, ENVELOPE, 1)

    assert not outcome.ok
    assert "invalid Signature (***)" in outcome.detail
    assert "S3cr3t" not in outcome.detail
    assert not [r for r in caplog.records if r.name.startswith("apprise") and "S3cr3t" in r.message]
