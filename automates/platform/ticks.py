"""When a worker fetches a run and when it starts the run's engine, relative to its tick.

Both workers that start runs on their second use these: the in-process workers
(automates/platform/inprocess.py) and the fast process worker (fast_worker.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

# How early a worker fetches a run and proposes Pending: enough to absorb a slow poll or a
# busy event loop; the run still waits for its scheduled time.
PREFETCH_SECONDS = 10
# How early the engine starts: it turns the run Running (Prefect's server accepts that less
# than half a second ahead) while the guard waits in the flow for the tick itself, so the
# engine's start-up is paid before the tick, not after it.
ENGINE_LEAD_SECONDS = 0.4


async def sleep_until(moment: datetime | None, lead: float) -> None:
    """Sleep until `lead` seconds before `moment` (a run's scheduled time); at once if past."""
    if moment is None:
        return
    delay = (moment - datetime.now(UTC)).total_seconds() - lead
    if delay > 0:
        await asyncio.sleep(delay)
