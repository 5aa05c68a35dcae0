"""The kind whitelist and the payload models refuse unknown kinds and hostile payloads."""

from __future__ import annotations

import json

import pytest

from automates.browser.kinds import KINDS, PageSnapshot, PortalLogin, parse_payload
from automates.errors import BrowserPayloadError

LOGIN = {
    "login_url": "https://portal.example.org/login",
    "username": "ada@example.org",
    "password": "correct-horse",
    "mailbox": "portal@example.org",
}


def test_valid_payloads_become_frozen_models() -> None:
    snapshot = parse_payload("page_snapshot", '{"url": "https://example.org/a?b=1#c"}')
    assert snapshot == PageSnapshot(url="https://example.org/a?b=1#c")
    login = parse_payload("portal_login", LOGIN)
    assert isinstance(login, PortalLogin) and login.mailbox == "portal@example.org"
    with pytest.raises(ValueError):
        setattr(login, "username", "eve")  # noqa: B010 (frozen: must raise)
    assert set(KINDS) == {"page_snapshot", "portal_login"}


@pytest.mark.parametrize("kind", ["shell", "PAGE_SNAPSHOT", "page_snapshot ", "", "__class__"])
def test_unknown_kinds_are_refused(kind: str) -> None:
    with pytest.raises(BrowserPayloadError, match="is not a browser job kind"):
        parse_payload(kind, "{}")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "http://x.test/$(id)"),
        ("url", "http://x.test/`id`"),
        ("url", "http://x.test/'; DROP TABLE t; --"),
        ("url", 'http://x.test/"'),
        ("url", "http://x.test/a\nb"),
        ("url", "http://x.test/$$body$$"),
        ("url", "file:///etc/passwd"),
        ("url", "javascript:alert(1)"),
        ("url", 42),
        ("max_text_chars", 0),
        ("max_text_chars", "10"),
    ],
)
def test_hostile_page_snapshot_payloads_are_refused_naming_the_field(
    field: str, value: object
) -> None:
    payload = {"url": "http://x.test/", field: value}
    with pytest.raises(BrowserPayloadError, match=f"field '{field}'"):
        parse_payload("page_snapshot", payload)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ada'; --"),
        ("username", "ada\nroot"),
        ("password", "pa ss"),
        ("password", "$(reboot)"),
        ("password", "a'b"),
        ("mailbox", "Portal@Example"),
        ("welcome_selector", "a'b"),
    ],
)
def test_hostile_portal_login_payloads_are_refused_without_echoing_them(
    field: str, value: str
) -> None:
    with pytest.raises(BrowserPayloadError, match=f"field '{field}'") as refused:
        parse_payload("portal_login", {**LOGIN, field: value})
    assert value not in str(refused.value)


def test_extra_fields_oversized_and_non_object_payloads_are_refused() -> None:
    with pytest.raises(BrowserPayloadError, match="field 'script'"):
        parse_payload("page_snapshot", {"url": "http://x.test/", "script": "1"})
    with pytest.raises(BrowserPayloadError, match="at most 4096"):
        parse_payload("page_snapshot", json.dumps({"url": "http://x.test/", "pad": "a" * 5000}))
    with pytest.raises(BrowserPayloadError, match="at most 4096"):
        parse_payload("page_snapshot", {"url": "http://x.test/" + "a" * 5000})
    with pytest.raises(BrowserPayloadError, match="not JSON"):
        parse_payload("page_snapshot", "{url: 1}")
    with pytest.raises(BrowserPayloadError, match="JSON object"):
        parse_payload("page_snapshot", '"http://x.test/"')
    with pytest.raises(BrowserPayloadError, match="nests too deeply"):
        parse_payload("page_snapshot", "[" * 2000 + "]" * 2000)  # within the size bound
