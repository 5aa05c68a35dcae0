"""The fast worker's spare executor context (automates/platform/executor_contexts.py), entered
against a real Prefect server: a run takes the context entered before it arrived, the context
is left when the run gives it back (before `take` returns, as Prefect's worker leaves its
own), and a fresh spare takes its place; a context whose events handshake the server dropped
is entered again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import pytest
from prefect.runner._flow_run_executor import FlowRunExecutorContext
from prefect.settings import PREFECT_API_URL, temporary_settings

from automates.platform import executor_contexts
from automates.platform.executor_contexts import SpareContext
from automates.settings import Settings

Events = list[tuple[str, int]]


def recording(events: Events) -> type[FlowRunExecutorContext]:
    """Prefect's context, noting each one entered and left (by its order of creation)."""

    class Recorded(FlowRunExecutorContext):
        made = 0

        def __init__(self) -> None:
            super().__init__()
            Recorded.made += 1
            self.number = Recorded.made

        async def __aenter__(self) -> FlowRunExecutorContext:
            entered = await super().__aenter__()
            events.append(("enter", self.number))
            return entered

        async def __aexit__(self, *exc_info: Any) -> bool | None:
            try:
                return await super().__aexit__(*exc_info)
            finally:
                events.append(("exit", self.number))

    return Recorded


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def on_server(settings: Settings, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
        asyncio.run(body())


def test_a_run_takes_the_context_entered_before_it_and_a_fresh_one_replaces_it(
    server: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: Events = []
    monkeypatch.setattr(executor_contexts, "FlowRunExecutorContext", recording(events))

    async def body() -> None:
        spare = SpareContext()
        # None ready (nothing keeps one yet): the run's own, entered and left as Prefect does.
        async with spare.take() as own:
            assert events == [("enter", 1)] and getattr(own, "number", None) == 1
        assert events == [("enter", 1), ("exit", 1)]
        events.clear()

        keeper = asyncio.create_task(spare.keep_one())
        try:
            await until(lambda: spare.ready, "the first spare")
            assert events == [("enter", 2)]
            async with spare.take() as first:
                assert getattr(first, "number", None) == 2  # entered before the run came
                assert first.client is not None and first.control_channel is not None
                await until(lambda: spare.ready, "the next spare")
                assert events == [("enter", 2), ("enter", 3)]  # the run's still open
                async with spare.take() as second:  # a second run at once: the new spare
                    assert getattr(second, "number", None) == 3
                # Left before take() returned, the first still open.
                assert ("exit", 3) in events and ("exit", 2) not in events
            assert ("exit", 2) in events
            await until(lambda: spare.ready, "a spare after both runs")
        finally:
            await spare.close()
            keeper.cancel()
        entered = {number for kind, number in events if kind == "enter"}
        left = {number for kind, number in events if kind == "exit"}
        assert entered == left  # close() left the spare still waiting

    on_server(server, body)


def test_a_spare_nobody_takes_is_entered_afresh(
    server: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: Events = []
    monkeypatch.setattr(executor_contexts, "FlowRunExecutorContext", recording(events))
    monkeypatch.setattr(executor_contexts, "FRESH_SECONDS", 0.5)

    async def body() -> None:
        spare = SpareContext()
        keeper = asyncio.create_task(spare.keep_one())
        try:
            # Each left once stale, and a fresh one entered in its place (a stale one's exit
            # and the next one's entry may overlap: only their occurrence is checked).
            replaced = {("enter", 1), ("exit", 1), ("enter", 2), ("exit", 2), ("enter", 3)}
            await until(lambda: replaced <= set(events), "the spare replaced twice")
            await until(lambda: spare.ready, "the current spare")
            async with spare.take() as taken:
                current = getattr(taken, "number", 0)
                assert ("enter", current) in events and ("exit", current) not in events
        finally:
            await spare.close()
            keeper.cancel()

    on_server(server, body)


@contextlib.asynccontextmanager
async def dropping_events_handshakes(
    api_url: str, drops: int, seen: list[str]
) -> AsyncIterator[str]:
    """A TCP proxy to the server that closes the first `drops` connections asking for the
    events websocket once it has read their request, as an API process killed mid-handshake
    does; yields the proxy's API URL, and notes each request line in `seen`."""
    target = urlsplit(api_url)
    left = [drops]

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].decode()
        seen.append(request_line)
        if "/events/" in request_line and left[0] > 0:
            left[0] -= 1
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(
            target.hostname, target.port
        )
        upstream_writer.write(head)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{target.path}"
    finally:
        proxy.close()


def test_a_context_whose_events_handshake_the_server_dropped_is_entered_again(
    server: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: Events = []
    monkeypatch.setattr(executor_contexts, "FlowRunExecutorContext", recording(events))

    seen: list[str] = []

    async def body() -> None:
        async with dropping_events_handshakes(server.api_url, 1, seen) as proxied:
            with temporary_settings(updates={PREFECT_API_URL: proxied}):
                async with SpareContext().take() as context:
                    assert getattr(context, "number", None) == 2  # the first was dropped
                    assert (await context.client.hello()).status_code == 200
        # The dropped one was left (what it had entered closed), the second entered and left.
        assert events == [("exit", 1), ("enter", 2), ("exit", 2)], events
        assert len([line for line in seen if "/events/in" in line]) == 2, seen

    on_server(server, body)
