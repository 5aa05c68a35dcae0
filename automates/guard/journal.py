"""What a run records while it runs, for the execution journal.

Automates feed it through four calls (outside a guarded run nothing is kept; `step` and
`warn` still log):

    from automates.guard.journal import bump, note, step, warn
    step("dumped database", size_mb=412)
    bump("rows_copied", 1200)
    warn("bucket versioning is off")
    note(bucket="s3://backups")
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("automates.journal")


def _log() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    from automates.guard.runner import run_logger

    return run_logger()


@dataclass
class Attempt:
    """A failed attempt, journaled once the outcome of its retry is known."""

    number: int
    error_class: str
    message: str
    traceback: str
    fix_applied: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class RunJournal:
    automate: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    attempts: int = 1
    exit_code: int | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    failures: list[Attempt] = field(default_factory=list)
    repaired: bool = False  # a fix already earned this run its one extra attempt

    def failed(self, error: BaseException, fix_applied: str | None = None) -> Attempt:
        attempt = Attempt(
            number=self.attempts,
            error_class=type(error).__name__,
            message=str(error)[:2000],
            traceback="".join(traceback.format_exception(error))[-20000:],
            fix_applied=fix_applied,
        )
        self.failures.append(attempt)
        self.errors.append(f"attempt {attempt.number}: {attempt.error_class}: {attempt.message}")
        return attempt


# One journal per flow run in progress, by flow run id: a fresh engine process runs one flow run,
# but the agent dispatcher runs several at once in threads of one process.
_journals: dict[str, RunJournal] = {}


def _run_key() -> str:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return str(context.flow_run.id) if context is not None and context.flow_run else ""


def begin(automate: str) -> RunJournal:
    run = _journals[_run_key()] = RunJournal(automate)
    return run


def current() -> RunJournal | None:
    return _journals.get(_run_key())


def end(flow_run_id: object) -> None:
    """Forget a flow run's journal once it is written."""
    _journals.pop(str(flow_run_id), None)


def step(name: str, **details: Any) -> None:
    """Record that a step of the run happened (with optional details)."""
    entry = {"step": name, "at": datetime.now(UTC).isoformat(), **details}
    if (run := current()) is not None:
        run.steps.append(entry)
    _log().info("step %s %s", name, details or "")


def bump(counter: str, by: float = 1) -> None:
    """Add `by` to a named counter of the run."""
    if (run := current()) is not None:
        run.counters[counter] = run.counters.get(counter, 0) + by


def warn(message: str) -> None:
    """Record a warning: the run goes on, the journal keeps it."""
    if (run := current()) is not None:
        run.warnings.append(message)
    _log().warning(message)


def note(**context: Any) -> None:
    """Add context to the run's journal row (e.g. the exit code of a script)."""
    if (run := current()) is not None:
        run.context.update(context)
