"""A run's attempts: the body called until it succeeds, or its retries (and self-repair's one
extra try) are spent, each failure journaled with the delay before the next.

The rule is written once (`after`); `call` and `call_async` only drive it, sleeping the way
the flow's kind needs (a sync flow's thread, an async flow's event loop).

Prefect's own run timeout reaches here as its CancelledError (a BaseException): it is never
retried. A TimeoutError the flow raised itself (a slow upstream) is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prefect.states import Completed

from automates.guard.context import RunContext
from automates.guard.repair import diagnose, repair


class ExitedNonZero(RuntimeError):
    """A Python automate called sys.exit with a non-zero code (and is not soft-fail)."""


@dataclass(frozen=True)
class Next:
    """What follows an attempt: its result to return, its error to raise, or a retry."""

    result: Any = None
    error: Exception | None = None
    retry_in: float | None = None


def call(run: RunContext, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    while True:
        try:
            step = after(run, result=fn(*args, **kwargs))
        except (Exception, SystemExit) as raised:
            step = after(run, raised=raised)
        if step.retry_in is None:
            return finish(step)
        time.sleep(step.retry_in)


async def call_async(
    run: RunContext, fn: Callable[..., Awaitable[Any]], args: Any, kwargs: Any
) -> Any:
    while True:
        try:
            step = after(run, result=await fn(*args, **kwargs))
        except (Exception, SystemExit) as raised:
            step = after(run, raised=raised)
        if step.retry_in is None:
            return finish(step)
        await asyncio.sleep(step.retry_in)


def finish(step: Next) -> Any:
    if step.error is not None:
        raise step.error
    return step.result


def after(run: RunContext, *, result: Any = None, raised: BaseException | None = None) -> Next:
    """The rule: what an attempt that returned `result` or raised `raised` leads to."""
    if raised is None:
        return Next(result=result)
    if isinstance(raised, SystemExit):
        exited = _exited(run, raised)
        if not isinstance(exited, Exception):
            return Next(result=exited)
        raised = exited
    assert isinstance(raised, Exception)
    delay = _delay_after(run, raised)
    return Next(error=raised) if delay is None else Next(retry_in=delay)


def _delay_after(run: RunContext, error: Exception) -> float | None:
    """Journal a failed attempt, self-repair it if its class is known; the delay before the
    next attempt, or None to give up."""
    record, policy = run.journal, run.policy
    attempt = record.failed(error)
    fixed = False
    diagnosis = diagnose(error)
    if diagnosis is not None:
        attempt.fix_applied, fixed = repair(
            diagnosis,
            data_root=run.settings.data_path,
            automate=policy.automate,
            installable=run.settings.installable_modules,
            variables=run.variables,
        )
        run.export_variables()  # a redirected log folder, say
        run.logger.warning("self-repair (%s): %s", diagnosis.kind, attempt.fix_applied)
    if record.attempts > policy.retries:
        if not fixed or record.repaired:
            return None
        record.repaired = True  # a fix earns one retry, even with no retries declared
    delay = policy.retry_delay(record.attempts, seed=run.run_id)
    run.logger.warning(
        "attempt %d failed (%s: %s); retrying in %.1f s",
        record.attempts,
        type(error).__name__,
        error,
        delay,
    )
    record.attempts += 1
    return delay


def _exited(run: RunContext, exit_: SystemExit) -> Any:
    """A Python automate that calls sys.exit: 0 completes; non-zero is findings for a
    soft-fail automate (the code kept), and otherwise a failure (returned, to be retried)."""
    code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    run.journal.exit_code = code
    if code == 0:
        return Completed(message="exited 0")
    if run.policy.soft_fail:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(
            key=f"findings-{run.automate}",
            markdown=f"# Findings\n\n{run.automate} exited {code}: see the run's log.\n",
            description=f"exit code {code}",
        )
        return Completed(name="Findings", message=f"exited {code}: findings", data=code)
    failure = ExitedNonZero(f"exited with {code}")
    failure.__cause__ = exit_
    return failure
