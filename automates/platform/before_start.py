"""Runs the guard would end before their body, settled by their worker without a process.

The guard's first pre-checks (guard/runner.py, BEFORE_PROCESS: the environment, the quiet
window, a tick missed under the `skip` policy) answer from the run alone. After an outage, or
through a quiet window, most of the runs a worker fetches are ones they end: each used to get
a process of its own (a fork or a Python start, Prefect's engine, its API calls) only to end
Skipped, and the burst after an outage held up the runs that really had to start. A worker of
this layer asks those checks itself, at the moment it would start the run's process:

- one of them ends the run: the worker proposes that state to Prefect (Pending → Completed
  "Skipped" or "Deferred", through Prefect's orchestration rules, not forced), says so in the
  run's log, and writes the journals through the guard's own final-state hook (`Guard.record`),
  as the run's process would have; the journal's context says `settled: before_process`;
- none does, the policy cannot be read, or asking fails: the process starts as before, and the
  guard in it asks every pre-check again. Nothing is lost by asking first.

The worker's settings stand in for the run's: a run's process gets the worker's settings (all
but its credentials, automates/platform/run_env.py), and the checks and the journals read
none of those.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio.to_thread
from prefect.client.schemas.objects import FlowRun, State
from prefect.client.schemas.responses import SetStateStatus

from automates.guard.runner import Guard
from automates.registry.policy import GuardPolicy
from automates.settings import Settings

# The journal context's mark of a run settled here.
SETTLED = "settled"
BEFORE_PROCESS = "before_process"


class SettledWithoutProcess(Exception):
    """What a worker reports to Prefect's loop for a run it settled: no process, no pid."""


async def settle(worker: Any, flow_run: FlowRun, env: Mapping[str, Any]) -> State | None:
    """The final state `worker` gave `flow_run` without starting its process, or None when
    the run needs its process (`env`: the environment the process would get)."""
    logger = worker.get_flow_run_logger(flow_run)
    try:
        policy = GuardPolicy.from_env({k: v for k, v in env.items() if v is not None})
    except ValueError:
        return None  # the process's guard reports an unreadable policy in the run itself
    if policy is None:
        return None
    guard = Guard(policy, Settings())
    run = guard.begin(flow_run)
    try:
        state = await anyio.to_thread.run_sync(guard.decide_before_process, run)
    except Exception:
        logger.warning("could not decide before its process; the process decides", exc_info=True)
        return None
    if state is None:
        return None
    try:
        result = await worker.client.set_flow_run_state(flow_run.id, state)
    except Exception:  # the API failed us: the process starts, and its guard asks again
        logger.warning("could not settle the run before its process", exc_info=True)
        return None
    if result.status is not SetStateStatus.ACCEPT or result.state is None:
        # The run moved meanwhile (cancelled, taken by another worker): its process, or
        # whoever moved it, settles it.
        logger.info("not settled before its process: Prefect answered %s", result.status.value)
        return None
    final = result.state
    logger.info("%s (settled by the worker, no process started)", final.message)
    run.journal.context[SETTLED] = BEFORE_PROCESS
    await anyio.to_thread.run_sync(guard.record, flow_run, final)
    return final
