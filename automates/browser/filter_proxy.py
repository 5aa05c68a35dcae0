"""Where the address rule is enforced: a SOCKS5 proxy every connection of a job's browser goes
through.

Chromium is launched with this proxy (loopback included), so every connection its pages open
(the first URL, each redirect, sub-requests, fetches, WebSockets, service workers) reaches
here as host and port. The proxy resolves the host once, applies the address rule to every
address, and connects to a checked address itself: a DNS answer that changes between the check
and the connection cannot move it. A refused connection gets SOCKS5's "not allowed by
ruleset" and is recorded. Playwright's request interception is not enough for this: its
handler is not called for the hops of a redirect.

In the datacenter topology the proxy connects onward through the upstream SOCKS5 proxy
(`browser_proxy`), naming the checked address, never the name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

from automates.browser.addresses import AddressRule, IPAddress, resolve

CONNECT_TIMEOUT_SECONDS = 15.0
# SOCKS5 replies (RFC 1928).
SUCCEEDED, NOT_ALLOWED, HOST_UNREACHABLE, REFUSED, NOT_SUPPORTED = 0, 2, 4, 5, 7


def _reply(code: int) -> bytes:
    return bytes([5, code, 0, 1]) + socket.inet_aton("0.0.0.0") + b"\x00\x00"


async def _read_request(reader: asyncio.StreamReader) -> tuple[int, str, int]:
    _version, command, _reserved, address_type = await reader.readexactly(4)
    if address_type == 1:
        host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
    elif address_type == 4:
        host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
    elif address_type == 3:
        host = (await reader.readexactly((await reader.readexactly(1))[0])).decode("idna")
    else:
        raise ConnectionError("unknown SOCKS5 address type")
    (port,) = struct.unpack("!H", await reader.readexactly(2))
    return command, host, port


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy what `reader` receives to `writer` until either side is gone, then close `writer`:
    one direction of a proxied connection."""
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _through_upstream(
    upstream: tuple[str, int], address: IPAddress, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(*upstream)
    try:
        writer.write(b"\x05\x01\x00")
        if await reader.readexactly(2) != b"\x05\x00":
            raise ConnectionError("the upstream proxy wants authentication")
        kind = 1 if address.version == 4 else 4
        writer.write(bytes([5, 1, 0, kind]) + address.packed + struct.pack("!H", port))
        _version, code, _reserved, bound_type = await reader.readexactly(4)
        await reader.readexactly({1: 4, 4: 16}.get(bound_type, 0) + 2)
        if code != SUCCEEDED:
            raise ConnectionError(f"the upstream proxy answered {code}")
    except BaseException:
        writer.close()
        raise
    return reader, writer


class FilterProxy:
    """One job's filtering SOCKS5 proxy on a loopback port, for the life of its browser."""

    def __init__(
        self,
        rule: AddressRule,
        upstream: str | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.rule = rule
        self.upstream = self._upstream(upstream)
        self.on_refused = on_refused
        self.refusals: list[str] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @staticmethod
    def _upstream(url: str | None) -> tuple[str, int] | None:
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme != "socks5" or not parts.hostname or not parts.port:
            raise ValueError("browser_proxy must be socks5://host:port")
        return parts.hostname, parts.port

    async def __aenter__(self) -> FilterProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"socks5://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()

    def _refuse(self, reason: str) -> None:
        self.refusals.append(reason)
        if self.on_refused is not None:
            self.on_refused(reason)

    async def _connect(
        self, addresses: list[IPAddress], port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for address in addresses:
            with contextlib.suppress(OSError, ConnectionError, TimeoutError, EOFError):
                if self.upstream is not None:
                    opening = _through_upstream(self.upstream, address, port)
                else:
                    opening = asyncio.open_connection(str(address), port)
                return await asyncio.wait_for(opening, CONNECT_TIMEOUT_SECONDS)
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            command, host, port = await _read_target_after_greeting(reader, writer)
            if command != 1:
                writer.write(_reply(NOT_SUPPORTED))
                return
            addresses = await resolve(host, port)
            if not addresses:
                writer.write(_reply(HOST_UNREACHABLE))
                return
            reason = self.rule.refusal(host, port, addresses)
            if reason is not None:
                self._refuse(reason)
                writer.write(_reply(NOT_ALLOWED))
                return
            connected = await self._connect(addresses, port)
            if connected is None:
                writer.write(_reply(REFUSED))
                return
            upstream_reader, upstream_writer = connected
            self._writers.add(upstream_writer)
            writer.write(_reply(SUCCEEDED))
            try:
                await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
            finally:
                self._writers.discard(upstream_writer)
                upstream_writer.close()
        except (ConnectionError, asyncio.IncompleteReadError, OSError, UnicodeError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


async def _read_target_after_greeting(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int, str, int]:
    _version, methods = await reader.readexactly(2)
    if 0 not in await reader.readexactly(methods):
        writer.write(b"\x05\xff")
        raise ConnectionError("the client offers no method without authentication")
    writer.write(b"\x05\x00")
    return await _read_request(reader)
