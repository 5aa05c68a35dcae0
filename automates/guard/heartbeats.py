"""A run's heartbeats: sent by its own process while its body runs, ended by one last event.

`beating` sends the first beat at once, then one every `AUTOMATES_RUN_HEARTBEAT_SECONDS` from
a daemon thread, for as long as its block runs; when the block is left (returned, raised, timed
out, suspended), the thread is stopped first and then `automates.flow-run.heartbeats-ended` is
sent, naming the last beat as the event it follows. Prefect's server evaluates a follower only after
its leader, so the automation that marks dead runs Crashed (automates/server/unresponsive.py)
always sees the end of the beats after the window the last beat opened: a run that ended is
never taken for dead, whatever order its events reach the server in. A process that dies sends
no end, and its window runs out.

Prefect's own flow-run heartbeats (`PREFECT_FLOWS_HEARTBEAT_FREQUENCY`, 180 s by default) are
off in a guarded run (`without_prefect_heartbeats`): these replace them. Prefect's thread sends
its first beat as the body starts, reading the run's deployment, work queue and work pool to
name them in it, and is joined in steps of a second as the run ends, so each short run's
process outlived its final state by most of a second (decision 0057).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from automates.guard.orchestrator import Event, Orchestrator
from automates.server.unresponsive import HEARTBEAT_EVENT, HEARTBEATS_ENDED_EVENT

logger = logging.getLogger(__name__)


def without_prefect_heartbeats() -> AbstractContextManager[object]:
    """Prefect's flow-run heartbeats off for the runs started in the block (guarded runs, which
    send their own)."""
    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


@contextmanager
def beating(orchestrator: Orchestrator, flow_run: FlowRun | None, every: float) -> Iterator[None]:
    """Send the run's heartbeats while the block runs, and their end after it (none for a
    call outside a flow run)."""
    if flow_run is None:
        yield
        return
    resource = {
        "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
        "prefect.resource.name": flow_run.name,
    }
    last = [_beat(orchestrator, resource)]  # sent before the body: a death at once is seen
    stop = threading.Event()

    def keep_beating() -> None:
        while not stop.wait(every):
            try:
                last[0] = _beat(orchestrator, resource)
            except Exception:  # a beat that could not be sent: the next one may be
                logger.debug("a heartbeat of %s could not be sent", flow_run.id, exc_info=True)

    # The thread sees this thread's Prefect settings (its API URL) and run context.
    thread = threading.Thread(
        target=contextvars.copy_context().run,
        args=(keep_beating,),
        name=f"heartbeats-{flow_run.id}",
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()  # no beat after the end
        orchestrator.emit(Event(HEARTBEATS_ENDED_EVENT, resource, follows=last[0]))


def _beat(orchestrator: Orchestrator, resource: dict[str, str]) -> Event:
    beat = Event(HEARTBEAT_EVENT, resource)
    orchestrator.emit(beat)
    return beat
