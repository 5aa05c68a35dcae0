"""The flow every service automate runs: its loop kept running, or its one-shot mode.

A loop run (the default) starts the declared command and, each time it exits, starts it again
after the restart delay of automates/scheduling/services.py; it ends only when it is cancelled
(the automate disabled, an operator's cancel) or when the command crash-loops, then in the
Cancelled state `CrashLoop` with a `component_crash_loop` alert for the automate. The run shows
in the Prefect UI as Running, with the command's output as its log; it has no timeout.

What restarts a loop run whose own process died (its worker's host lost, `kill -9`): the
deployment's "keep running" automation (automates/server/triggers.py) starts a new one when a
loop run ends Crashed or Failed, and this flow first counts those failures towards the crash
loop and waits the restart delay. The command is started with `--pdeathsig KILL`
(automates/guard/command.py), so it never outlives the run that started it.

A run with `once: true` runs the declaration's `once` command once, under the run's timeout,
like a script automate. Both modes hold the guard's `forbid` slot: exactly one instance of
the service's code runs at a time, and a second run ends Skipped naming the first.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled, Failed, State

from automates.alerts import catalog
from automates.alerts.outbox import Alert, raise_alert
from automates.guard import journal
from automates.guard.command import Command
from automates.guard.context import RunContext, current
from automates.guard.logs import Logger
from automates.guard.orchestrator import Event
from automates.guard.recording import store
from automates.guard.script import NotDeclared, finished
from automates.scheduling.services import (
    CRASH_LOOP,
    STABLE_SECONDS,
    crash_looping,
    earlier_failures,
    is_loop_run,
    restart_delay,
)
from automates.store.engine import transaction

HISTORY = 50  # earlier loop runs read to count recent failures


@flow(name="service")
def run_service(once: bool = False) -> State:
    """Keep the declared command running (`once`: run the one-shot command once instead).

    The commands come from the guard's policy, which the deployment carries from the
    declaration; `once` only chooses between the two that were declared."""
    logger = get_run_logger()
    run = current()
    if run is None or not run.policy.service or not run.policy.command:
        raise NotDeclared("a service runs only under the guard of a declaration that names it")
    if once:
        return _run_once(run, logger)
    return _keep_running(run, logger)


def _run_once(run: RunContext, logger: Logger) -> State:
    policy = run.policy
    if not policy.once_command:
        return Failed(message=f"{policy.automate} declares no one-shot mode (`once`); nothing ran")
    argv = list(policy.once_command)
    deadline = time.monotonic() + policy.timeout_seconds
    command = Command(argv, logger, run.command_environment(), die_with_parent=True)
    exit_code = command.wait(deadline)
    if exit_code is None:
        command.stop()
        journal.note(command=argv, mode="once")
        return Failed(
            name="TimedOut",
            message=f"one-shot mode ran longer than timeout_seconds={policy.timeout_seconds}: "
            "stopped",
        )
    journal.note(mode="once")
    return finished(policy, argv, exit_code, command)


def _keep_running(run: RunContext, logger: Logger) -> State:
    policy, settings = run.policy, run.settings
    argv = list(policy.command or ())
    limit, window = settings.crash_loop.restarts, settings.crash_loop.window_seconds
    history = _finished_loop_runs(run)
    exits: deque[datetime] = deque(_failures(history), maxlen=limit + 1)
    quick_exits = len(exits)
    # Started again after a crash-loop stop: once the command runs stably, say it recovered.
    last = history[0].state if history else None
    recovering = last is not None and last.name == CRASH_LOOP

    def on_stable() -> None:
        nonlocal recovering
        if recovering:
            _alert(run, catalog.service_recovered(policy.automate))
            recovering = False

    restarts = 0
    while True:
        if crash_looping(exits, datetime.now(UTC), limit, window):
            return _crash_loop(run, logger, len(exits), window)
        if quick_exits:
            delay = restart_delay(policy.retry_backoff_seconds, quick_exits)
            logger.warning("restarting %s in %.1f s", argv[0], delay)
            time.sleep(delay)
        started = time.monotonic()
        exit_code = _run_command(argv, run, logger, on_stable)
        ran = time.monotonic() - started
        # Every restart waits; a run of STABLE_SECONDS or more starts the doubling over.
        quick_exits = 1 if ran >= STABLE_SECONDS else quick_exits + 1
        exits.append(datetime.now(UTC))
        restarts += 1
        journal.note(restarts=restarts, last_exit_code=exit_code)
        logger.warning(
            "%s exited with %s after %.0f s (restart %d)", argv[0], exit_code, ran, restarts
        )
        _emit(run, "automates.service.exited", exit_code=exit_code, restarts=restarts)


def _run_command(
    argv: list[str], run: RunContext, logger: Logger, on_stable: Callable[[], None]
) -> int:
    """Run the command until it exits; its exit code (127: it could not start). `on_stable`
    is called once if it is still running STABLE_SECONDS after its start."""
    try:
        command = Command(argv, logger, run.command_environment(), die_with_parent=True)
    except OSError as error:
        logger.error("cannot start %s: %s", argv[0], error)
        return 127
    logger.info("started %s (pid %d)", argv[0], command.pid)
    exit_code = command.wait(time.monotonic() + STABLE_SECONDS)
    if exit_code is None:
        on_stable()
        exit_code = command.wait()
    assert exit_code is not None
    return exit_code


def _crash_loop(run: RunContext, logger: Logger, exits: int, window: int) -> State:
    automate = run.automate
    reason = f"exited {exits} times within {window} s"
    logger.error("%s is in a crash loop (%s): stopped until `automates sync`", automate, reason)
    flow_run_id = run.flow_run.id if run.flow_run is not None else None
    _alert(run, catalog.service_crash_loop(automate, reason, flow_run_id))
    _emit(run, "automates.service.crash-loop", exits=exits)
    return Cancelled(
        name=CRASH_LOOP,
        message=f"crash loop: {reason}; stopped, `automates sync` starts it again",
    )


def _finished_loop_runs(run: RunContext) -> list[FlowRun]:
    """The service's earlier loop runs that ended, newest first (at most HISTORY)."""
    if run.flow_run is None or run.deployment_id is None:
        return []
    runs = run.orchestrator.finished_runs(run.deployment_id, limit=HISTORY)
    return [r for r in runs if r.id != run.flow_run.id and is_loop_run(r.parameters)]


def _failures(history: list[FlowRun]) -> list[datetime]:
    """When earlier loop runs crashed or failed since the last stop, oldest first."""
    ended = ((r.state.type.value if r.state else None, r.end_time) for r in history)
    return sorted(earlier_failures(ended))


def _alert(run: RunContext, alert: Alert) -> None:
    """Raise an alert through the store's outbox; a store that cannot be reached is logged
    (the run's state and events still say it)."""
    try:
        with transaction(store(run.settings.store_block)) as connection:
            raise_alert(connection, alert)
    except Exception:
        run.logger.exception("could not raise the alert %s", alert.kind.value)


def _emit(run: RunContext, event: str, **payload: Any) -> None:
    resource = {
        "prefect.resource.id": f"automates.service.{run.automate}",
        "automates.automate": run.automate,
    }
    related = []
    if run.flow_run is not None:
        related = [
            {
                "prefect.resource.id": f"prefect.flow-run.{run.flow_run.id}",
                "prefect.resource.role": "flow-run",
            }
        ]
    run.orchestrator.emit(Event(event, resource=resource, related=related, payload=payload))
