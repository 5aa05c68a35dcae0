"""The guard's wait for a run's own events (automates/guard/events_sent.py), on Prefect's real
events worker with an events client that sends only when the test lets it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from prefect.events import Event
from prefect.events.clients import AssertingEventsClient
from prefect.events.schemas.events import Resource
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

from automates.guard.events_sent import _events_workers, events_sent, events_sent_async


class HeldEventsClient(AssertingEventsClient):
    """Sends an event only once `release` is set (a websocket still opening, a server slow
    to answer the related-resource reads)."""

    release: ClassVar[threading.Event] = threading.Event()

    async def _emit(self, event: Any) -> None:
        await asyncio.to_thread(self.release.wait, 30)
        await super()._emit(event)


@pytest.fixture
def held() -> Iterator[threading.Event]:
    HeldEventsClient.release = threading.Event()
    AssertingEventsClient.reset()
    EventsWorker.set_client_override(HeldEventsClient)
    # Events are emitted only towards a server; none is reached (the client is the test's).
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        try:
            yield HeldEventsClient.release
        finally:
            HeldEventsClient.release.set()
            EventsWorker.drain_all(at_exit=False)
            EventsWorker.set_client_override(None)


def sent() -> list[str]:
    client = AssertingEventsClient.last
    return [event.event for event in getattr(client, "events", [])]


def emit_heartbeat() -> None:
    """What Prefect's `emit_event` does once it has built the event (it hands events only to
    the client types it knows, by exact type, so the held client is given the event here)."""
    heartbeat = Event(
        event="prefect.flow-run.heartbeat",
        resource=Resource({"prefect.resource.id": "prefect.flow-run.1"}),
    )
    EventsWorker.instance().send(heartbeat)


def test_the_wait_ends_once_the_events_given_are_sent(held: threading.Event) -> None:
    emit_heartbeat()
    # Not sent yet: the wait says so after its bound, and nothing was sent.
    began = time.monotonic()
    assert events_sent(timeout=0.3) is False
    assert time.monotonic() - began >= 0.3
    assert sent() == []
    # Let the client send: the wait returns as the event has gone, not at its bound.
    threading.Timer(0.2, held.set).start()
    assert events_sent(timeout=20) is True
    assert sent() == ["prefect.flow-run.heartbeat"]


def test_an_async_flow_waits_without_blocking_its_loop(held: threading.Event) -> None:
    async def flow_body() -> tuple[bool, bool, int]:
        emit_heartbeat()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        refused = await events_sent_async(timeout=0.2)
        held.set()
        done = await events_sent_async(timeout=20)
        ticker.cancel()
        return refused, done, ticks

    refused, done, ticks = asyncio.run(flow_body())
    assert (refused, done) == (False, True)
    assert ticks > 5  # the loop ran while the flow waited
    assert sent() == ["prefect.flow-run.heartbeat"]


def test_a_process_with_no_events_worker_neither_waits_nor_starts_one() -> None:
    EventsWorker.drain_all(at_exit=False)
    assert events_sent(timeout=5) is True  # nothing to wait for: not its bound
    assert _events_workers() == []  # and it started none
