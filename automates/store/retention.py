"""Retention of what the layer keeps: each rule deletes (or purges the private columns of) the
rows of one store table past their time, in small batches, one transaction each.

A batch takes at most `batch` rows, picked oldest first and locked with `FOR UPDATE SKIP
LOCKED` (a row a run is writing is left for the next batch, never waited for), under a short
`lock_timeout`: no batch holds a lock longer than its own statement, and none queues behind a
long transaction. The crash journal is not here: it is append-only (decision 0049).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from automates.errors import StoreError
from automates.settings.groups import RetentionSettings
from automates.states import AlertDeliveryStatus
from automates.store.engine import transaction
from automates.store.schema import SCHEMA, one_of

# A batch that would wait this long for a lock gives up; the next run takes its rows.
LOCK_TIMEOUT = "2s"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout
# Deliveries that are not over yet: their alert stays whatever its age.
_UNFINISHED = (AlertDeliveryStatus.PENDING, AlertDeliveryStatus.SENDING, AlertDeliveryStatus.FOLDED)


@dataclass(frozen=True)
class Rule:
    """What goes from one table, and when."""

    name: str  # how the report names it
    table: str
    days: Callable[[RetentionSettings], int]
    where: str  # the rows past their time, given `:cutoff`; for a purge, not purged yet
    purge: str | None = None  # the SET clause of a purge; None: the rows are deleted
    key: str = "id"

    def _picked(self, after: bool) -> str:
        # Keyset: each batch starts past the last key the previous one took, so none walks
        # again over the index entries of rows already gone (not yet vacuumed away).
        past = f" AND {self.key} > :after" if after else ""
        return (
            f"SELECT {self.key} FROM {SCHEMA}.{self.table} WHERE {self.where}{past}"
            f" ORDER BY {self.key} LIMIT :batch FOR UPDATE SKIP LOCKED"
        )

    def batch_sql(self, *, after: bool) -> str:
        """One batch; it returns the keys it took. With `after`, only keys past `:after`."""
        target = f"{SCHEMA}.{self.table}"
        picked = f"{self.key} IN ({self._picked(after)})"
        if self.purge is None:
            return f"DELETE FROM {target} WHERE {picked} RETURNING {self.key}"
        return f"UPDATE {target} SET {self.purge} WHERE {picked} RETURNING {self.key}"

    def count_sql(self) -> str:
        return f"SELECT count(*) FROM {SCHEMA}.{self.table} WHERE {self.where}"


# In order: a task run's output before the task run, task runs before their scoped run.
RULES: tuple[Rule, ...] = (
    Rule(
        "execution journal",
        "execution_journal",
        lambda r: r.execution_journal_days,
        "finished_at < :cutoff",
    ),
    Rule(
        "agents' tool calls",
        "agent_tool_calls",
        lambda r: r.execution_journal_days,
        "called_at < :cutoff",
    ),
    Rule(
        "task-run output",
        "task_run_output",
        lambda r: r.task_run_output_days,
        f"task_run_id IN (SELECT id FROM {SCHEMA}.task_runs WHERE ended_at < :cutoff)",
    ),
    Rule("task runs", "task_runs", lambda r: r.task_runs_days, "ended_at < :cutoff"),
    Rule("LLM façade calls", "llm_calls", lambda r: r.task_runs_days, "started_at < :cutoff"),
    Rule(
        "scoped runs",
        "runs",
        lambda r: r.task_runs_days,
        f"ended_at < :cutoff AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.task_runs t"
        " WHERE t.run_id = runs.id)",
    ),
    Rule(
        "browser-job payloads and results",
        "browser_jobs",
        lambda r: r.browser_payload_days,
        "finished_at < :cutoff AND (payload <> '{}'::jsonb OR result IS NOT NULL)",
        purge="payload = '{}'::jsonb, result = NULL",
    ),
    Rule("browser jobs", "browser_jobs", lambda r: r.browser_jobs_days, "finished_at < :cutoff"),
    Rule("second-factor codes", "browser_mailbox", lambda r: 1, "received_at < :cutoff"),
    Rule(
        "alerts",
        "alerts",
        lambda r: r.alerts_days,
        "raised_at < :cutoff AND (condition IS NULL OR resolved_at IS NOT NULL)"
        f" AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.alert_deliveries d WHERE d.alert_id = alerts.id"
        f" AND d.{one_of('status', _UNFINISHED)})",
    ),
)


@dataclass
class Applied:
    """What one rule did in one run."""

    rule: str
    table: str
    cutoff: datetime
    rows: int = 0
    batches: int = 0
    longest_batch_ms: float = 0.0  # the longest any of its locks was held
    finished: bool = True  # False: stopped (time budget, a lock not had), rows are left
    stopped_by: str | None = None
    batch_ms: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "table": self.table,
            "cutoff": self.cutoff.isoformat(),
            "rows": self.rows,
            "batches": self.batches,
            "longest_batch_ms": round(self.longest_batch_ms, 1),
            "finished": self.finished,
            "stopped_by": self.stopped_by,
        }


def due(connection: Connection, settings: RetentionSettings, now: datetime) -> list[Applied]:
    """What each rule would take now, counted, nothing changed (a dry run)."""
    found = []
    for rule in RULES:
        cutoff = now - timedelta(days=rule.days(settings))
        rows = connection.execute(text(rule.count_sql()), {"cutoff": cutoff}).scalar_one()
        found.append(Applied(rule.name, rule.table, cutoff, rows=rows))
    return found


def apply(
    engine: Engine,
    settings: RetentionSettings,
    now: datetime,
    *,
    deadline: float | None = None,
    only: tuple[str, ...] | None = None,
) -> list[Applied]:
    """Apply every rule (or those of the tables in `only`), batch after batch, until each has
    nothing left past its time or the monotonic `deadline` passes."""
    done = []
    for rule in RULES:
        if only is not None and rule.table not in only:
            continue
        applied = Applied(rule.name, rule.table, now - timedelta(days=rule.days(settings)))
        last: Any = None  # the greatest key taken so far
        while True:
            if deadline is not None and time.monotonic() > deadline:
                applied.finished, applied.stopped_by = False, "the run's time budget"
                break
            started = time.perf_counter()
            try:
                keys = _batch(engine, rule, applied.cutoff, settings.batch_rows, last)
            except StoreError as error:
                if not _lock_wait(error):
                    raise
                applied.finished, applied.stopped_by = False, f"a lock held over {LOCK_TIMEOUT}"
                break
            elapsed = (time.perf_counter() - started) * 1000
            taken = len(keys)
            last = max(keys, default=last)
            applied.batches += 1
            applied.rows += taken
            applied.longest_batch_ms = max(applied.longest_batch_ms, elapsed)
            applied.batch_ms.append(elapsed)
            if taken < settings.batch_rows:
                break
        done.append(applied)
    return done


def _batch(engine: Engine, rule: Rule, cutoff: datetime, rows: int, after: Any) -> list[Any]:
    """One batch of `rule` in its own transaction; the keys it took."""
    parameters = {"cutoff": cutoff, "batch": rows, "after": after}
    with transaction(engine) as connection:
        connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        taken = connection.execute(text(rule.batch_sql(after=after is not None)), parameters)
        return list(taken.scalars())


def _lock_wait(error: StoreError) -> bool:
    cause = error.__cause__
    return isinstance(cause, DBAPIError) and getattr(cause.orig, "sqlstate", None) == (
        LOCK_NOT_AVAILABLE
    )
