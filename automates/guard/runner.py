"""Wrapping a flow in its guard: environment, env files, advisory lock, timeout, retries with
self-repair, soft-fail exits, and the journals and breaker at the end.

The wrapped flow is still the declared flow (same name, parameters, hooks); Prefect enforces
the timeout (`timeout_seconds`, final state "TimedOut"), and the guard runs the attempts itself
so that each retry can wait an exponentially growing, jittered delay and each failed attempt is
journaled with the outcome of its retry.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.states import Completed

from automates.envfiles import load_env_files
from automates.guard import breaker, concurrency, journal
from automates.guard.approval import approval_refusal
from automates.guard.context import in_force
from automates.guard.misfire import misfire_refusal
from automates.guard.quiet_hours import quiet_refusal
from automates.guard.recording import record_run
from automates.guard.repair import LOG_DIR_ENV, diagnose, repair
from automates.registry.policy import GuardPolicy
from automates.settings import Settings

logger = logging.getLogger("automates.guard")

# Prefect's server lets a run turn Running up to half a second before its scheduled time (it
# rounds the wait to whole seconds); a wait longer than this is a clock problem, not a lead.
MAX_TICK_WAIT_SECONDS = 1.0


def guarded(flow: Flow[..., Any], policy: GuardPolicy, settings: Settings) -> Flow[..., Any]:
    """The declared flow with the automate's guard around it."""

    def journal_the_run(flow: Flow[..., Any], flow_run: FlowRun, state: State) -> None:
        _record(flow_run, state, policy, settings)

    wrapped = flow.with_options(
        # A service's loop runs until it is stopped; its one-shot mode keeps its own deadline.
        timeout_seconds=None if policy.service else policy.timeout_seconds,
        retries=0,  # the guard retries itself, with backoff and journaling
        on_completion=[*flow.on_completion_hooks, journal_the_run],
        on_failure=[*flow.on_failure_hooks, journal_the_run],
        on_crashed=[*flow.on_crashed_hooks, journal_the_run],
        on_cancellation=[*flow.on_cancellation_hooks, journal_the_run],
    )
    wrapped.fn = _wrap(flow.fn, policy, settings)
    return wrapped


def _refusal(policy: GuardPolicy, settings: Settings) -> State | None:
    """The state that ends this run before its body, or None. In order: the environment,
    quiet hours, the misfire policy (a stale tick), the approval (the run may wait here)."""
    if policy.environments and settings.environment not in policy.environments:
        allowed = ", ".join(policy.environments)
        return Completed(
            name="Skipped",
            message=f"skipped: runs only in {allowed}; this is {settings.environment!r}",
        )
    return (
        quiet_refusal(policy)  # Skipped or Deferred inside the quiet window
        or misfire_refusal(policy, settings)
        or approval_refusal(policy, settings)
    )


def _until_tick() -> float:
    """Seconds until this run's scheduled time when it is just ahead: an in-process worker
    starts a run's engine a little before its tick (automates/platform/inprocess.py), and the
    body waits here for the tick itself. Never more than MAX_TICK_WAIT_SECONDS."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    if flow_run is None or flow_run.expected_start_time is None:
        return 0.0
    ahead = flow_run.expected_start_time.timestamp() - time.time()
    return min(max(ahead, 0.0), MAX_TICK_WAIT_SECONDS)


def _prepare(policy: GuardPolicy, settings: Settings) -> State | None:
    journal.begin(policy.automate)
    refusal = _refusal(policy, settings)
    if refusal is None:
        log_dir = settings.data_path / "logs" / policy.automate
        log_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault(LOG_DIR_ENV, str(log_dir))
        loaded = load_env_files(Path.cwd() / name for name in policy.env_files)
        if loaded:
            journal.note(env_loaded=sorted(loaded))
    return refusal


def _delay_after(
    error: Exception, policy: GuardPolicy, settings: Settings, run_id: str
) -> float | None:
    """Journal a failed attempt, self-repair it if its class is known; the delay before the
    next attempt, or None to give up.

    Prefect's own run timeout reaches here as its CancelledError (a BaseException): it is never
    retried. A TimeoutError the flow raised itself (a slow upstream) is.
    """
    run = journal.current()
    assert run is not None
    attempt = run.failed(error)
    fixed = False
    diagnosis = diagnose(error)
    if diagnosis is not None:
        attempt.fix_applied, fixed = repair(
            diagnosis,
            data_root=settings.data_path,
            automate=policy.automate,
            installable=settings.installable_modules,
        )
        run_logger().warning("self-repair (%s): %s", diagnosis.kind, attempt.fix_applied)
    if run.attempts > policy.retries:
        if not fixed or run.repaired:
            return None
        run.repaired = True  # a fix earns one retry, even with no retries declared
    delay = policy.retry_delay(run.attempts, seed=run_id)
    run_logger().warning(
        "attempt %d failed (%s: %s); retrying in %.1f s",
        run.attempts,
        type(error).__name__,
        error,
        delay,
    )
    run.attempts += 1
    return delay


class ExitedNonZero(RuntimeError):
    """A Python automate called sys.exit with a non-zero code (and is not soft-fail)."""


def _exited(exit_: SystemExit, policy: GuardPolicy) -> Any:
    """A Python automate that calls sys.exit: 0 completes; non-zero is findings for a
    soft-fail automate (the code kept), and otherwise a failure (returned, to be retried)."""
    code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    run = journal.current()
    if run is not None:
        run.exit_code = code
    if code == 0:
        return Completed(message="exited 0")
    if policy.soft_fail:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(
            key=f"findings-{policy.automate}",
            markdown=f"# Findings\n\n{policy.automate} exited {code}: see the run's log.\n",
            description=f"exit code {code}",
        )
        return Completed(name="Findings", message=f"exited {code}: findings", data=code)
    failure = ExitedNonZero(f"exited with {code}")
    failure.__cause__ = exit_
    return failure


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The flow run's logger (its lines reach the run's log in the UI), else ours."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logger


def _run_id() -> str:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else "unknown"


def _wrap(fn: Callable[..., Any], policy: GuardPolicy, settings: Settings) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(_until_tick())
            refusal = _prepare(policy, settings)
            if refusal is not None:
                return refusal
            with concurrency.slot(policy, settings) as refused, in_force(policy):
                if refused is not None:
                    return refused
                return await _attempts_async(fn, args, kwargs, policy, settings)

        return guarded_async

    @functools.wraps(fn)
    def guarded_sync(*args: Any, **kwargs: Any) -> Any:
        time.sleep(_until_tick())
        refusal = _prepare(policy, settings)
        if refusal is not None:
            return refusal
        with concurrency.slot(policy, settings) as refused, in_force(policy):
            if refused is not None:
                return refused
            return _attempts(fn, args, kwargs, policy, settings)

    return guarded_sync


async def _attempts_async(
    fn: Callable[..., Any], args: Any, kwargs: Any, policy: GuardPolicy, settings: Settings
) -> Any:
    while True:
        try:
            return await fn(*args, **kwargs)
        except SystemExit as exit_:
            error = _exited(exit_, policy)
            if not isinstance(error, Exception):
                return error
        except Exception as raised:
            error = raised
        delay = _delay_after(error, policy, settings, _run_id())
        if delay is None:
            raise error
        await asyncio.sleep(delay)


def _attempts(
    fn: Callable[..., Any], args: Any, kwargs: Any, policy: GuardPolicy, settings: Settings
) -> Any:
    while True:
        try:
            return fn(*args, **kwargs)
        except SystemExit as exit_:
            error = _exited(exit_, policy)
            if not isinstance(error, Exception):
                return error
        except Exception as raised:
            error = raised
        delay = _delay_after(error, policy, settings, _run_id())
        if delay is None:
            raise error
        time.sleep(delay)


def _record(flow_run: FlowRun, state: State, policy: GuardPolicy, settings: Settings) -> None:
    """State hook: journal the run's outcome. A journal that cannot be written is logged, and
    never turns a finished run into a failure."""
    from prefect.logging.loggers import flow_run_logger

    run = journal.current() or journal.begin(policy.automate)
    try:
        transition = record_run(settings, policy, run, flow_run, state, datetime.now(UTC))
    except Exception:
        flow_run_logger(flow_run).exception("could not write the journals of %s", policy.automate)
        return
    finally:
        journal.end(flow_run.id)
    try:
        breaker.apply(transition, flow_run.deployment_id, schedules_active=policy.enabled)
    except Exception:
        flow_run_logger(flow_run).exception(
            "journals written, but the breaker of %s could not reach the Prefect API "
            "(its schedules follow at the next `automates sync`)",
            policy.automate,
        )


def outcome_of(state: State) -> str:
    """The journal's lowercase outcome for a final Prefect state."""
    by_name = {
        "Findings": "findings",
        "Skipped": "skipped",
        "Deferred": "skipped",  # quiet hours: this run did nothing; a later one will
        "Held": "skipped",  # misfire: did nothing; the automate waits for operator review
        "TimedOut": "timed_out",
    }
    if state.name in by_name:
        return by_name[state.name]
    return {
        StateType.COMPLETED: "completed",
        StateType.CRASHED: "crashed",
        StateType.CANCELLED: "cancelled",
    }.get(state.type, "failed")
