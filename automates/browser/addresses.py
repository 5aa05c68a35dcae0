"""The address rule: which hosts a browser job may make its browser reach.

A job's browser may reach globally routable addresses only. Loopback, link-local, private,
shared (carrier-grade NAT), multicast, reserved and unspecified addresses, and the addresses
of the machine itself and of the layer's own API, are forbidden unless the operator lists the
host in `browser_allowed_hosts` (decision 0028). The same rule holds on server-side and
residential workers.

The rule is checked at enqueue (a fast, clear refusal) and enforced where the browser runs,
on every connection the browser opens (`automates.browser.filter_proxy`): redirects,
sub-requests and DNS answers that changed since the enqueue included.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psutil

from automates.errors import BrowserJobError
from automates.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT_SECONDS = 10.0
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# NAT64 (RFC 6052) embeds an IPv4 address in its last 32 bits.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SHARED = ipaddress.ip_network("100.64.0.0/10")


def host_address(host: str) -> IPAddress | None:
    """The IP address a URL host denotes, read the way browsers read it; None for a name.

    Browsers accept IPv4 in decimal, hex and octal, and in fewer than four parts
    (`2130706433`, `0x7f.1`, `0177.0.0.1`): `inet_aton` reads exactly those forms.
    """
    text = host.strip().rstrip(".").lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(text.split("%", 1)[0])  # a zone id (fe80::1%eth0)
    if text and all(part.isalnum() for part in text.split(".")):
        with contextlib.suppress(OSError):
            return ipaddress.IPv4Address(socket.inet_aton(text))
    return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_class(address: IPAddress) -> str | None:
    """Why a browser job may not reach `address` by default, or None for a public address."""
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = address_class(inner)
        return f"{reason} (inside {address})" if reason else None
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address in SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_private:  # ipaddress's registry: RFC 1918, ULA, documentation, benchmarking...
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def _is_localhost_name(host: str) -> bool:
    # Browsers resolve localhost and every *.localhost name to loopback without asking DNS.
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


@dataclass(frozen=True)
class AllowedHost:
    """One entry of `browser_allowed_hosts`: a host name or IP address, with or without a port."""

    host: str  # lower case; an IP address in its canonical form
    port: int | None

    @classmethod
    def parse(cls, entry: str) -> AllowedHost:
        text = entry.strip().lower()
        host, port = text, None
        if text.startswith("["):
            inside, _, rest = text[1:].partition("]")
            host = inside
            if rest:
                port = _port(rest.removeprefix(":"), entry)
        elif text.count(":") == 1:
            host, _, number = text.partition(":")
            port = _port(number, entry)
        address = host_address(host)
        host = str(address) if address is not None else host.rstrip(".")
        if not host or any(c in host for c in "/@ "):
            raise BrowserJobError(
                f"browser_allowed_hosts: {entry[:80]!r} is not a host or host:port"
            )
        return cls(host, port)

    def allows(self, host: str, port: int) -> bool:
        return self.host == host and self.port in (None, port)


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise BrowserJobError(f"browser_allowed_hosts: {entry[:80]!r} has no valid port")
    return int(text)


def _canonical(host: str) -> str:
    address = host_address(host)
    return str(address) if address is not None else host.strip().rstrip(".").lower()


def local_addresses() -> frozenset[IPAddress]:
    """The addresses of this machine's own interfaces."""
    found: set[IPAddress] = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                address = host_address(entry.address)
                if address is not None:
                    found.add(address)
    return frozenset(found)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (the literal itself for an address); [] if none."""
    literal = host_address(host)
    if literal is not None:
        return [literal]
    if _is_localhost_name(host):
        return [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]
    loop = asyncio.get_running_loop()
    try:
        answers = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError, UnicodeError):
        return []
    addresses: list[IPAddress] = []
    for *_, sockaddr in answers:
        address = host_address(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


@dataclass(frozen=True)
class AddressRule:
    """The rule one check applies: the operator's allowlist and the layer's own addresses."""

    allowed: tuple[AllowedHost, ...] = ()
    own: frozenset[IPAddress] = field(default_factory=frozenset)

    @classmethod
    def build(
        cls, allowed_hosts: Iterable[str], own_urls: Iterable[str | None] = ()
    ) -> AddressRule:
        """The rule for this machine: its interfaces' addresses, and those `own_urls` name
        (the Prefect API, the gate), are its own."""
        own = set(local_addresses())
        for url in own_urls:
            host = urlsplit(url).hostname if url else None
            if host:
                with contextlib.suppress(OSError, UnicodeError):
                    for *_, sockaddr in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM):
                        address = host_address(str(sockaddr[0]))
                        if address is not None:
                            own.add(address)
        return cls(tuple(AllowedHost.parse(entry) for entry in allowed_hosts), frozenset(own))

    def allows_name(self, host: str, port: int) -> bool:
        name = _canonical(host)
        return any(entry.allows(name, port) for entry in self.allowed)

    def refusal(self, host: str, port: int, addresses: Iterable[IPAddress]) -> str | None:
        """Why a connection to `host`:`port` at `addresses` is refused, or None if allowed.

        A host the operator allowed (by name or address, any port or that port) is allowed
        wherever it resolves. Otherwise every address must be public and none the layer's own:
        one forbidden answer among public ones refuses the host. No address: nothing to refuse
        (and nothing to connect to).
        """
        if self.allows_name(host, port):
            return None
        for address in addresses:
            if self.allows_name(str(address), port):
                continue
            reason = address_class(address)
            if reason is None and address in self.own:
                reason = "an address of the layer's own machine"
            if reason is None and embedded_ipv4(address) in self.own:
                reason = "an address of the layer's own machine"
            if reason is not None:
                shown = "" if host_address(host) == address else f" ({address})"
                return f"{host}:{port}{shown} is {reason}, not in browser_allowed_hosts"
        return None

    async def check(self, host: str, port: int) -> str | None:
        """`refusal` after resolving `host` here (a name nobody resolves is not refused by
        this; the worker checks again where the browser runs)."""
        if self.allows_name(host, port):
            return None
        if _is_localhost_name(host):
            return f"{host}:{port} is a loopback name, not in browser_allowed_hosts"
        addresses = await resolve(host, port)
        if not addresses:
            return None
        return self.refusal(host, port, addresses)

    async def check_url(self, url: str) -> str | None:
        """Why the browser may not open `url`, or None."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return "it is not a valid URL"
        if parts.scheme not in DEFAULT_PORTS or parts.username or parts.password:
            return "only http(s) URLs without credentials are allowed"
        if not parts.hostname:
            return "it has no host"
        return await self.check(parts.hostname, port or DEFAULT_PORTS[parts.scheme])


def settings_rule(settings: Settings) -> AddressRule:
    """The rule on this machine: the operator's allowlist; the addresses of this machine, of
    the Prefect API (or gate) it talks to and of the store are its own."""
    own_urls = (settings.api_url, settings.database_url, settings.gate.upstream_url)
    return AddressRule.build(settings.browser.allowed_hosts, own_urls)
