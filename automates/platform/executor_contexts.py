"""Prefect's per-run executor context, entered before the run arrives.

Prefect's process worker enters a `FlowRunExecutorContext` for each run as the run starts: an
API client, an event emitter, the control channel's listener, and the cancellation observer
with its websocket subscription (about a quarter of a second of the trigger-to-body time on
this machine, measured in bench/pickup_bench.py). `SpareContext` keeps one such context entered
ahead, as the run launcher keeps its imports done ahead: the next run takes it, and a new
spare is entered for the run after. Each run still has a context of its own, used by it alone
and closed after it exactly as Prefect closes it (cancellation work drained first), so
cancellation, the control channel and the run's events behave as with Prefect's own worker.

A context is entered and left by the same task (its task groups require it): a holder task
enters it, hands it over, and waits for the run to give it back before it leaves it.

Entering one opens Prefect's events websocket. When an API process dies mid-handshake (one of
several behind the port killed or restarted), the handshake ends in `InvalidMessage`, which
Prefect's events client neither retries nor its emitter tolerates (it tolerates only a refused
or dropped connection), so the run would crash before it started: a context is entered again
then, a few times (`entered_context`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from prefect.runner._flow_run_executor import FlowRunExecutorContext
from websockets.exceptions import InvalidMessage

LOGGER = logging.getLogger(__name__)
# A spare entered longer ago than this is closed and entered afresh: its client and its
# subscriptions are then never older than a few minutes when a run takes them.
FRESH_SECONDS = 300.0
# A spare that could not be entered (the server away) is tried again after this pause.
RETRY_SECONDS = 5.0
# A handshake the server dropped: entered again this many times in all, this far apart.
ENTER_ATTEMPTS = 3
ENTER_PAUSE_SECONDS = 0.5


@contextlib.asynccontextmanager
async def entered_context() -> AsyncIterator[FlowRunExecutorContext]:
    """Prefect's executor context, entered again when the server drops its websocket
    handshake, and left as `async with` leaves it."""
    async with contextlib.AsyncExitStack() as stack:
        for attempt in range(1, ENTER_ATTEMPTS + 1):
            context = FlowRunExecutorContext()
            try:
                await stack.enter_async_context(context)
                break
            except InvalidMessage as dropped:
                # Leave what it entered before the handshake (its client, its processes).
                with contextlib.suppress(Exception):
                    await context.__aexit__(type(dropped), dropped, dropped.__traceback__)
                if attempt == ENTER_ATTEMPTS:
                    raise
                LOGGER.warning(
                    "the server dropped the events handshake (%s); entering the run's "
                    "executor context again (%s of %s)",
                    dropped,
                    attempt + 1,
                    ENTER_ATTEMPTS,
                )
                await asyncio.sleep(ENTER_PAUSE_SECONDS)
        yield context


@dataclass
class _Lease:
    context: FlowRunExecutorContext
    holder: asyncio.Task[None]
    returned: asyncio.Event = field(default_factory=asyncio.Event)


class SpareContext:
    """One `FlowRunExecutorContext` entered ahead of the next run."""

    def __init__(self) -> None:
        self._spare: asyncio.Queue[_Lease] = asyncio.Queue(maxsize=1)
        self._holders: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def ready(self) -> bool:
        """Whether a spare is entered and waiting for a run."""
        return not self._spare.empty()

    async def keep_one(self) -> None:
        """Keep a spare entered, for as long as this runs (a background task of the worker)."""
        while not self._closed:
            entered = asyncio.Event()
            holder = asyncio.create_task(self._hold(entered))
            self._holders.add(holder)
            holder.add_done_callback(self._holders.discard)
            waiting = asyncio.create_task(entered.wait())
            await asyncio.wait({waiting, holder}, return_when=asyncio.FIRST_COMPLETED)
            if not entered.is_set():  # it could not be entered (the API away): again soon
                waiting.cancel()
                try:
                    await holder
                except Exception as error:
                    LOGGER.info(
                        "no spare executor context (%s); runs enter their own until the next "
                        "try in %s s",
                        type(error).__name__,
                        RETRY_SECONDS,
                    )
                await asyncio.sleep(RETRY_SECONDS)
                continue
            await self._spare.join()  # taken by a run, or closed as stale

    async def _hold(self, entered: asyncio.Event) -> None:
        holder = asyncio.current_task()
        assert holder is not None
        async with entered_context() as context:
            lease = _Lease(context, holder)
            self._spare.put_nowait(lease)
            entered.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lease.returned.wait(), FRESH_SECONDS)
            if lease.returned.is_set():
                return
            try:  # nobody took it in time: leave it, and a fresh spare takes its place
                self._spare.get_nowait()
            except asyncio.QueueEmpty:  # taken just now: the run gives it back
                await lease.returned.wait()
            else:
                self._spare.task_done()

    @contextlib.asynccontextmanager
    async def take(self) -> AsyncIterator[FlowRunExecutorContext]:
        """A context for one run: the spare if one is ready (left after the run, before this
        returns, as Prefect leaves its own), else one entered now, as Prefect's worker does."""
        try:
            lease: _Lease | None = self._spare.get_nowait()
        except asyncio.QueueEmpty:
            lease = None
        else:
            self._spare.task_done()
        if lease is None or lease.holder.done():  # none ready, or its holder gone
            async with entered_context() as context:
                yield context
            return
        try:
            yield lease.context
        finally:
            lease.returned.set()
            with contextlib.suppress(Exception):
                await asyncio.shield(lease.holder)

    async def close(self) -> None:
        """Leave every context still held (the worker's teardown, after its runs ended);
        `keep_one` enters no more."""
        self._closed = True
        for holder in list(self._holders):
            holder.cancel()
        for holder in list(self._holders):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await holder
