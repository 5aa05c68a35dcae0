"""A run's own events reach the server before its final state does.

Prefect's engine sends a run's first heartbeat as its body starts, through the process's
events worker (a thread that looks up the run's related resources, then sends on a websocket
it opens at its first event), while the final state goes by HTTP as soon as the body
returns. A short run's final state therefore reached the server before its only heartbeat,
and the layer's unresponsive-run automation (automates/server/unresponsive.py: after a
heartbeat, expect another event of the run within 90 s) saw a heartbeat that nothing
followed: it fired for every short run, 90 s later, and the server built an orchestration
client for an action it then refused (the run had ended) — on a 2-core machine with fifty
every-minute automates, a sixth of the server's CPU. The guard waits, after the body and
before Prefect proposes the final state, until the events worker has sent what it was given.
The wait is bounded: an unreachable server costs a run at most `SEND_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

# Long enough for a websocket to open and a few related-resource reads on a loaded machine;
# short enough that an unreachable server does not hold a finished run.
SEND_TIMEOUT_SECONDS = 2.0


def events_sent(timeout: float = SEND_TIMEOUT_SECONDS) -> bool:
    """Wait until this process's events worker has sent every event given to it (at most
    `timeout` seconds); whether it had. At once when it has none."""
    return _waiting().wait(timeout)


async def events_sent_async(timeout: float = SEND_TIMEOUT_SECONDS) -> bool:
    """`events_sent` for a flow on an event loop: the loop keeps running while it waits."""
    return await asyncio.to_thread(_waiting().wait, timeout)


def _waiting() -> threading.Event:
    """An event set once every events worker of this process has an empty queue (at once
    when there is none).

    Prefect's `wait_until_empty` takes no timeout: it waits in a daemon thread, so a wait that
    outlives its bound never holds the process's exit."""
    workers = _events_workers()
    sent = threading.Event()

    def wait() -> None:
        for worker in workers:
            worker.wait_until_empty()
        sent.set()

    threading.Thread(target=wait, name="automates-events-sent", daemon=True).start()
    return sent


def _events_workers() -> list[Any]:
    """The events workers running in this process. Not `EventsWorker.instance()`: in a
    process that has sent no event it would start a worker (and, with no API URL set,
    Prefect's ephemeral server) only to find it empty. Prefect keeps its queue services in
    one class-level map, `_instances`, which is read here (no public listing exists)."""
    from prefect.events.worker import EventsWorker

    services = list(getattr(EventsWorker, "_instances", {}).values())
    return [s for s in services if isinstance(s, EventsWorker) and not s._stopped]
