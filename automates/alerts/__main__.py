"""`python -m automates.alerts`: the alert deliverer and the outbound heartbeat, one process.

`automates up` starts it as the `alerts` component; SIGTERM (from `down`) stops both loops
after the sends in flight.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from automates.alerts.deliverer import Deliverer
from automates.alerts.heartbeat import heartbeat_loop
from automates.settings import Settings
from automates.store.database import database_url
from automates.store.engine import make_engine


def _heartbeat(settings: Settings, stop: threading.Event) -> None:
    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        watcher = loop.run_in_executor(
            None, lambda: (stop.wait(), loop.call_soon_threadsafe(stopping.set))
        )
        await heartbeat_loop(settings, stopping)
        await watcher

    asyncio.run(run())


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    pinger = threading.Thread(target=_heartbeat, args=(settings, stop), name="heartbeat")
    pinger.start()
    engine = make_engine(database_url(settings))
    try:
        Deliverer(settings, engine).serve(stop)
    finally:
        stop.set()
        pinger.join()
        engine.dispose()


if __name__ == "__main__":
    main()
