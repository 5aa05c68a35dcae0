"""A run's process that a re-submission superseded: it must not start the run's body.

run-watch re-submits a run left Pending past its grace (automates/guard/settle.py): the worker
that took it died, or lost its database, before the run's process started. But a process can
also be merely slow to start (a loaded host, a server recovering): it then reaches the body
after the run was handed to a second worker, whose process runs it too. Prefect's server does
not stop this — nothing forbids Running → Running, and a worker records each process it starts
as the run's `infrastructure_pid`. So the process checks, before the body, that it is the
run's recorded process: one that is not was superseded, and leaves without touching the run's
state (the recorded process owns it). Only a process that has the run to itself asks: runs of
an in-process worker share the worker's process.
"""

from __future__ import annotations

import os
from collections.abc import Collection

from automates.guard.context import RunContext


def own_identifiers() -> frozenset[str]:
    """What a worker may have recorded for this process: its pid, or its parent's (a command
    a worker starts through a shell)."""
    return frozenset({str(os.getpid()), str(os.getppid())})


def superseded_by(run: RunContext, own: Collection[str]) -> str | None:
    """The process the run's worker recorded instead of this one, if another; None when this
    process is the run's (or no worker recorded any, or the run cannot be read: nothing says
    it is not)."""
    if run.flow_run is None:
        return None
    try:
        recorded = run.orchestrator.read_run(run.flow_run.id).infrastructure_pid
    except Exception as error:  # the API failed us after its retries: the run goes on, as before
        run.logger.warning("could not read run %s to check its process: %s", run.run_id, error)
        return None
    if recorded is None or recorded in own:
        return None
    return recorded


def leave_quietly(run: RunContext, recorded: str) -> None:
    """End this process at once, the run's state untouched: the recorded process runs it."""
    run.logger.warning(
        "run %s was re-submitted and is now process %s's: this process (%s) leaves without "
        "running it",
        run.run_id,
        recorded,
        os.getpid(),
    )
    os._exit(0)  # not SystemExit: Prefect's engine would turn it into a final state
