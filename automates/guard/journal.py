"""What a run records while it runs, for the execution journal.

Automates feed it through four calls (outside a guarded run nothing is kept; `step` and
`warn` still log):

    from automates.guard.journal import bump, note, step, warn
    step("dumped database", size_mb=412)
    bump("rows_copied", 1200)
    warn("bucket versioning is off")
    note(bucket="s3://backups")

The guard makes a run's journal the current one for the run's body (`keeping`): a context
variable, so runs side by side in one process (the in-process workers) each write their own.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from automates.guard.logs import run_logger


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
    """One run's record, filled while it runs and written once it ends.

    A field named as a column of the execution journal (store/journals.py `Execution`) is
    written to it as is (guard/recording.py); the row is frozen and this record is not, so the
    two dataclasses cannot share their declarations."""

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

    def elapsed_seconds(self) -> float:
        return (datetime.now(UTC) - self.started_at).total_seconds()


_CURRENT: ContextVar[RunJournal | None] = ContextVar("automates_run_journal", default=None)


@contextmanager
def keeping(run: RunJournal) -> Iterator[RunJournal]:
    """Make `run` the journal the four calls write to, in this context (thread or task)."""
    token = _CURRENT.set(run)
    try:
        yield run
    finally:
        _CURRENT.reset(token)


def current() -> RunJournal | None:
    """The journal of the guarded run this code runs in, or None outside the guard."""
    return _CURRENT.get()


def step(name: str, **details: Any) -> None:
    """Record that a step of the run happened (with optional details)."""
    entry = {"step": name, "at": datetime.now(UTC).isoformat(), **details}
    if (run := current()) is not None:
        run.steps.append(entry)
    run_logger().info("step %s %s", name, details or "")


def bump(counter: str, by: float = 1) -> None:
    """Add `by` to a named counter of the run."""
    if (run := current()) is not None:
        run.counters[counter] = run.counters.get(counter, 0) + by


def warn(message: str) -> None:
    """Record a warning: the run goes on, the journal keeps it."""
    if (run := current()) is not None:
        run.warnings.append(message)
    run_logger().warning(message)


def note(**context: Any) -> None:
    """Add context to the run's journal row (e.g. the exit code of a script)."""
    if (run := current()) is not None:
        run.context.update(context)
