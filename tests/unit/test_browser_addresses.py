"""The address rule (decision 0028): what a browser job may reach, read the way browsers read
hosts; and its enforcement, the filtering SOCKS5 proxy, refusing before any connection."""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from collections.abc import Iterator

import pytest

from automates.browser import addresses
from automates.browser.addresses import (
    AddressRule,
    AllowedHost,
    address_class,
    host_address,
)
from automates.browser.filter_proxy import FilterProxy
from automates.browser.kinds import KINDS, check_addresses, parse_payload, url_fields
from automates.errors import BrowserJobError, BrowserPayloadError
from tests.fixtures.browser_site import Sink, serve_sink

RULE = AddressRule()  # nothing allowed beyond public addresses; no own addresses

FORBIDDEN_HOSTS = [
    ("127.0.0.1", "loopback"),
    ("127.1", "loopback"),
    ("2130706433", "loopback"),  # decimal
    ("0x7f.1", "loopback"),  # hex, two parts
    ("0x7f000001", "loopback"),
    ("0177.0.0.1", "loopback"),  # octal
    ("017700000001", "loopback"),
    ("127.0.0.1.", "loopback"),  # trailing dot
    ("::1", "loopback"),
    ("[::1]", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:7f00:1", "loopback"),
    ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
    ("0.0.0.0", "unspecified"),
    ("0", "unspecified"),
    ("::", "unspecified"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("[fe80::1%eth0]", "link-local"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("0xc0.0xa8.1.1", "private"),
    ("fd00::1", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "private"),  # documentation: ipaddress files it under private
    ("198.18.0.1", "private"),  # benchmarking
]


@pytest.mark.parametrize(("host", "why"), FORBIDDEN_HOSTS)
def test_internal_addresses_in_every_spelling_are_classed(host: str, why: str) -> None:
    address = host_address(host)
    assert address is not None, host
    reason = address_class(address)
    assert reason is not None and why in reason, (host, reason)


@pytest.mark.parametrize("host", ["8.8.8.8", "93.184.215.14", "2606:4700::1111", "1.1.1.1"])
def test_public_addresses_are_allowed(host: str) -> None:
    address = host_address(host)
    assert address is not None and address_class(address) is None


@pytest.mark.parametrize("host", ["example.org", "127.0.0.1.nip.io", "0x7f.example", "a..b"])
def test_names_are_not_addresses(host: str) -> None:
    assert host_address(host) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://LOCALHOST.:8080/",
        "http://router.localhost/",
        "http://127.0.0.1:4200/api/admin/settings",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::]/",
        "http://0.0.0.0/",
        "file:///etc/passwd",
        "data:text/html,hi",
        "chrome://settings",
        "javascript:alert(1)",
        "view-source:http://example.org/",
        "http://user:pw@example.org/",
    ],
)
def test_check_url_refuses_internal_targets_and_other_schemes(url: str) -> None:
    assert asyncio.run(RULE.check_url(url)) is not None


def test_names_resolving_to_internal_addresses_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {
        "127.0.0.1.nip.io": ["127.0.0.1"],
        "mixed.example": ["93.184.215.14", "10.0.0.7"],  # one internal answer is enough
        "public.example": ["93.184.215.14", "2606:4700::1111"],
    }

    async def fake_resolve(host: str, port: int) -> list[addresses.IPAddress]:
        return [ipaddress.ip_address(a) for a in answers.get(host, [])]

    monkeypatch.setattr(addresses, "resolve", fake_resolve)
    said = asyncio.run(RULE.check("127.0.0.1.nip.io", 80))
    assert (
        said
        == "127.0.0.1.nip.io:80 (127.0.0.1) is a loopback address, not in browser_allowed_hosts"
    )
    assert "private" in (asyncio.run(RULE.check("mixed.example", 443)) or "")
    assert asyncio.run(RULE.check("public.example", 443)) is None
    assert asyncio.run(RULE.check("nowhere.example", 443)) is None  # the worker decides


def test_the_layers_own_addresses_are_refused_even_when_public() -> None:
    own = AddressRule(own=frozenset({ipaddress.ip_address("93.184.215.14")}))
    reason = own.refusal("93.184.215.14", 4200, [ipaddress.ip_address("93.184.215.14")])
    assert reason is not None and "layer's own machine" in reason
    mapped = ipaddress.ip_address("::ffff:93.184.215.14")
    assert "layer's own" in (own.refusal("x.example", 4200, [mapped]) or "")


def test_the_allowlist_matches_the_host_and_the_port_when_given() -> None:
    rule = AddressRule.build(["127.0.0.1:8080", "nas.lan", "[::1]:9000", "10.0.0.5"])
    loopback = [ipaddress.ip_address("127.0.0.1")]
    assert rule.refusal("127.0.0.1", 8080, loopback) is None
    assert rule.refusal("2130706433", 8080, loopback) is None  # same address, other spelling
    assert rule.refusal("127.0.0.1", 4200, loopback) is not None  # another port: refused
    assert rule.refusal("localhost", 8080, loopback) is None  # allowed by the address it reaches
    assert rule.refusal("127.0.0.2", 8080, [ipaddress.ip_address("127.0.0.2")]) is not None
    assert rule.refusal("NAS.lan.", 5000, [ipaddress.ip_address("192.168.1.9")]) is None
    assert rule.refusal("::1", 9000, [ipaddress.ip_address("::1")]) is None
    assert rule.refusal("::1", 9001, [ipaddress.ip_address("::1")]) is not None
    assert rule.refusal("intranet", 443, [ipaddress.ip_address("10.0.0.5")]) is None


@pytest.mark.parametrize("entry", ["http://x/", "a b", "host:99999", "host:x", "", "[::1]:0"])
def test_bad_allowlist_entries_are_refused_by_name(entry: str) -> None:
    with pytest.raises(BrowserJobError, match="browser_allowed_hosts"):
        AllowedHost.parse(entry)


def test_every_url_field_of_every_kind_is_checked() -> None:
    fields = {kind: url_fields(model) for kind, model in KINDS.items()}
    assert fields == {"page_snapshot": ["url"], "portal_login": ["login_url"]}
    for model in KINDS.values():  # a new kind's URL field must be typed SafeUrl to be checked
        for name in model.model_fields:
            assert "url" not in name or name in url_fields(model), (model, name)


def test_a_refused_payload_names_the_kind_the_field_and_why() -> None:
    payload = parse_payload(
        "portal_login",
        {"login_url": "http://169.254.169.254/", "username": "a", "password": "p", "mailbox": "m"},
    )
    with pytest.raises(BrowserPayloadError) as refused:
        asyncio.run(check_addresses("portal_login", payload, RULE))
    message = str(refused.value)
    assert "kind 'portal_login'" in message and "field 'login_url'" in message
    assert "link-local address, not in browser_allowed_hosts" in message


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A loopback HTTP server on 127.0.0.2 counting the requests reaching it."""
    with serve_sink("127.0.0.2") as served:
        yield served


async def _socks_get(proxy_url: str, host: str, port: int) -> tuple[int, bytes]:
    """A SOCKS5 CONNECT by name (as Chromium sends it), then GET /; the reply code and body."""
    proxy_port = int(proxy_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    writer.write(b"\x05\x01\x00")
    assert await reader.readexactly(2) == b"\x05\x00"
    name = host.encode()
    writer.write(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", port))
    reply = await reader.readexactly(10)
    body = b""
    if reply[1] == 0:
        writer.write(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        body = await reader.read()
    writer.close()
    return reply[1], body


def test_the_filter_proxy_refuses_before_connecting_and_lets_allowed_hosts_through(
    sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(sink.url.rsplit(":", 1)[1])  # the sink listens on 127.0.0.2
    real_resolve = addresses.resolve

    async def rebinding(host: str, port: int) -> list[addresses.IPAddress]:
        # sink.test is the operator's allowed name; rebound.example, a public name whose DNS
        # now answers the same loopback address (after any check at enqueue).
        if host in ("sink.test", "rebound.example"):
            return [ipaddress.ip_address("127.0.0.2")]
        return await real_resolve(host, port)

    monkeypatch.setattr("automates.browser.filter_proxy.resolve", rebinding)
    refused: list[str] = []

    async def scenario() -> list[int]:
        rule = AddressRule.build([f"sink.test:{port}"])
        async with FilterProxy(rule, on_refused=refused.append) as proxy:
            codes = [
                (await _socks_get(proxy.url, "rebound.example", port))[0],
                (await _socks_get(proxy.url, "127.0.0.2", port))[0],
                (await _socks_get(proxy.url, "localhost", port))[0],
                (await _socks_get(proxy.url, "no-such-name.invalid", port))[0],
            ]
            code, body = await _socks_get(proxy.url, "sink.test", port)
            assert body.endswith(b"sink")
            return [*codes, code]

    assert asyncio.run(scenario()) == [2, 2, 2, 4, 0]  # not allowed x3, unreachable, allowed
    assert sink.hits == ["/"]  # only the allowed connection reached the sink
    assert len(refused) == 3 and "rebound.example:" in refused[0]
