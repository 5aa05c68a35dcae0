"""Retention on a real store: each rule takes only what is past its time, in batches, and
leaves the rest; the crash journal is never pruned, still refuses UPDATE and DELETE, and its
old rows leave only through the privileged archive."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, make_url, text

from automates.errors import StoreError
from automates.settings.groups import RetentionSettings
from automates.store.crash_archive import archive_crashes
from automates.store.engine import make_engine, transaction
from automates.store.retention import RULES, apply, due
from tests.fixtures.commands import invoke, invoke_json
from tests.fixtures.stores import platform_store

SMALL_BATCHES = RetentionSettings(batch_rows=10)


@pytest.fixture
def engine(scratch_database: str, tmp_path: Path) -> Engine:
    return platform_store(scratch_database, tmp_path)


def _sql(engine: Engine, statement: str, **parameters: Any) -> list[Any]:
    with transaction(engine) as connection:
        result = connection.execute(text(statement), parameters)
        return list(result) if result.returns_rows else []


def _count(engine: Engine, table: str, where: str = "true") -> int:
    [(count,)] = _sql(engine, f"SELECT count(*) FROM automates.{table} WHERE {where}")
    return int(count)


def _journal(engine: Engine, days_ago: int, rows: int) -> None:
    _sql(
        engine,
        "INSERT INTO automates.execution_journal (automate, flow_run_id, started_at, finished_at,"
        " duration_seconds, outcome, attempts) SELECT 'nightly', gen_random_uuid(),"
        " now() - make_interval(days => :days), now() - make_interval(days => :days), 1,"
        " 'completed', 1 FROM generate_series(1, :rows)",
        days=days_ago,
        rows=rows,
    )


def _task_run(engine: Engine, days_ago: int | None, run_id: UUID | None = None) -> UUID:
    """A task run ended `days_ago` (None: still running) with three lines of output."""
    task_run = uuid4()
    status, ended = ("running", None) if days_ago is None else ("completed", days_ago)
    _sql(
        engine,
        "INSERT INTO automates.task_runs (id, run_id, codename, agent, prompt, template,"
        " perimeter, timeout_seconds, status, attempts, ended_at) VALUES (:id, :run, 'c',"
        " 'scout', 'p', 'research', 'platform', 60, :status, 1,"
        " now() - make_interval(days => :ended))",
        id=task_run,
        run=run_id,
        status=status,
        ended=ended,
    )
    _sql(
        engine,
        "INSERT INTO automates.task_run_output (task_run_id, attempt, line)"
        " SELECT :id, 1, 'line ' || n FROM generate_series(1, 3) n",
        id=task_run,
    )
    return task_run


def _scoped_run(engine: Engine, days_ago: int) -> UUID:
    run = uuid4()
    _sql(
        engine,
        "INSERT INTO automates.runs (id, perimeter, source, trigger, title, status, ended_at)"
        " VALUES (:id, 'platform', 'test', 'manual', 't', 'completed',"
        " now() - make_interval(days => :days))",
        id=run,
        days=days_ago,
    )
    return run


def _browser_job(engine: Engine, days_ago: int | None) -> UUID:
    """A done job ended `days_ago` (None: still running), holding a payload and a result."""
    job = uuid4()
    done = days_ago is not None
    _sql(
        engine,
        "INSERT INTO automates.browser_jobs (id, kind, payload, status, timeout_seconds,"
        " attempts, started_at, finished_at, result) VALUES (:id, 'portal_login',"
        " '{\"password\": \"hunter2-secret\"}', :status, 60, 1, now() - interval '400 days',"
        " now() - make_interval(days => :days), :result)",
        id=job,
        status="done" if done else "running",
        days=days_ago,
        result='{"balance": "private"}' if done else None,
    )
    return job


def _alert(engine: Engine, days_ago: int, *, delivery: str, condition: bool = False) -> int:
    [(alert_id,)] = _sql(
        engine,
        "INSERT INTO automates.alerts (raised_at, kind, signature, condition, title, body,"
        " routed_at) VALUES (now() - make_interval(days => :days), 'run_failed', 's',"
        " :condition, 't', 'b', now() - make_interval(days => :days)) RETURNING id",
        days=days_ago,
        condition="breaker:nightly" if condition else None,
    )
    _sql(
        engine,
        "INSERT INTO automates.alert_deliveries (alert_id, route, status) VALUES (:id, 'ops',"
        " :status)",
        id=alert_id,
        status=delivery,
    )
    return int(alert_id)


def test_each_rule_takes_only_what_is_past_its_time(engine: Engine) -> None:
    _journal(engine, days_ago=100, rows=25)  # past 90 days: three batches of ten
    _journal(engine, days_ago=80, rows=4)
    old_scoped = _scoped_run(engine, days_ago=400)
    gone = _task_run(engine, days_ago=400, run_id=old_scoped)
    quiet = _task_run(engine, days_ago=40)  # its output goes, the task run stays
    recent = _task_run(engine, days_ago=2)
    running = _task_run(engine, days_ago=None)
    kept_scoped = _scoped_run(engine, days_ago=400)
    kept_task = _task_run(engine, days_ago=2, run_id=kept_scoped)  # keeps its scoped run
    purged, deleted = _browser_job(engine, days_ago=10), _browser_job(engine, days_ago=400)
    fresh, unended = _browser_job(engine, days_ago=1), _browser_job(engine, days_ago=None)
    delivered = _alert(engine, days_ago=100, delivery="sent")
    pending = _alert(engine, days_ago=100, delivery="pending")
    open_condition = _alert(engine, days_ago=100, delivery="sent", condition=True)
    young = _alert(engine, days_ago=10, delivery="sent")
    _sql(
        engine,
        "INSERT INTO automates.browser_mailbox (mailbox, code, received_at) VALUES"
        " ('me', '123456', now() - interval '2 days'), ('me', '654321', now())",
    )

    _sql(
        engine,
        "INSERT INTO automates.llm_calls (agent, model, status, reserved_usd, cost_usd,"
        " started_at, ended_at) VALUES ('scout', 'm', 'spent', 1, 1, now() - interval '400 days',"
        " now() - interval '400 days'), ('scout', 'm', 'reserved', 1, 0, now(), NULL)",
    )

    now = datetime.now(UTC)
    with transaction(engine) as connection:
        counted = {(a.rule, a.rows) for a in due(connection, SMALL_BATCHES, now)}
    assert ("execution journal", 25) in counted and ("task-run output", 6) in counted
    assert _count(engine, "execution_journal") == 29  # counting changed nothing

    applied = {a.rule: a for a in apply(engine, SMALL_BATCHES, now)}
    journal = applied["execution journal"]
    assert (journal.rows, journal.batches, journal.finished) == (25, 3, True)
    assert all(a.finished for a in applied.values())
    assert set(applied) == {rule.name for rule in RULES}

    assert _count(engine, "execution_journal") == 4
    assert _count(engine, "task_runs", f"id = '{gone}'") == 0
    output = _sql(engine, "SELECT task_run_id, count(*) FROM automates.task_run_output GROUP BY 1")
    assert {row[0]: row[1] for row in output} == {recent: 3, running: 3, kept_task: 3}
    assert _count(engine, "task_runs", f"id IN ('{quiet}', '{recent}', '{running}')") == 3
    assert _count(engine, "runs", f"id = '{old_scoped}'") == 0
    assert _count(engine, "runs", f"id = '{kept_scoped}'") == 1

    jobs = {
        r[0]: (r[1], r[2])
        for r in _sql(engine, "SELECT id, payload, result FROM automates.browser_jobs")
    }
    assert deleted not in jobs
    assert jobs[purged] == ({}, None)  # the row stays, its private columns do not
    assert jobs[fresh][1] == {"balance": "private"} and jobs[unended][0] != {}
    alerts = {r[0] for r in _sql(engine, "SELECT id FROM automates.alerts")}
    assert alerts == {pending, open_condition, young} and delivered not in alerts
    assert _count(engine, "browser_mailbox") == 1
    assert (
        _count(engine, "llm_calls") == 1 and _count(engine, "llm_calls", "status = 'reserved'") == 1
    )

    again = apply(engine, SMALL_BATCHES, now)  # nothing is left to take
    assert sum(a.rows for a in again) == 0 and all(a.batches == 1 for a in again)


def test_a_batch_gives_up_a_locked_row_instead_of_waiting(engine: Engine) -> None:
    _journal(engine, days_ago=100, rows=3)
    holder = engine.connect()
    try:
        transaction_ = holder.begin()
        holder.execute(text("LOCK TABLE automates.execution_journal IN EXCLUSIVE MODE"))
        [journal] = apply(engine, SMALL_BATCHES, datetime.now(UTC), only=("execution_journal",))
        assert (journal.rows, journal.finished) == (0, False)
        assert journal.stopped_by is not None and "lock" in journal.stopped_by
        transaction_.rollback()
    finally:
        holder.close()
    [journal] = apply(engine, SMALL_BATCHES, datetime.now(UTC), only=("execution_journal",))
    assert (journal.rows, journal.finished) == (3, True)


def test_a_time_budget_stops_between_batches(engine: Engine) -> None:
    _journal(engine, days_ago=100, rows=30)
    [journal] = apply(
        engine, SMALL_BATCHES, datetime.now(UTC), deadline=0.0, only=("execution_journal",)
    )
    assert (journal.rows, journal.batches, journal.finished) == (0, 0, False)
    assert _count(engine, "execution_journal") == 30


def test_the_crash_journal_is_never_pruned_and_still_append_only(engine: Engine) -> None:
    _sql(
        engine,
        "INSERT INTO automates.crash_journal (automate, flow_run_id, attempt, occurred_at,"
        " error_class, message, traceback, retry_outcome) VALUES ('nightly', gen_random_uuid(),"
        " 1, now() - interval '900 days', 'E', 'm', 't', 'failed')",
    )
    apply(engine, RetentionSettings(), datetime.now(UTC))
    assert _count(engine, "crash_journal") == 1
    for statement in (
        "UPDATE automates.crash_journal SET message = 'x'",
        "DELETE FROM automates.crash_journal",
        "TRUNCATE automates.crash_journal",
    ):
        with pytest.raises(StoreError, match="append-only"):
            _sql(engine, statement)
    assert _count(engine, "crash_journal") == 1


def _crash(engine: Engine, days_ago: int) -> None:
    _sql(
        engine,
        "INSERT INTO automates.crash_journal (automate, flow_run_id, attempt, occurred_at,"
        " error_class, message, traceback, retry_outcome) VALUES ('nightly', gen_random_uuid(),"
        " 1, now() - make_interval(days => :days), 'E', 'm', 't', 'failed')",
        days=days_ago,
    )


@pytest.fixture
def app_role_url(scratch_database: str, engine: Engine) -> Iterator[str]:
    """The scratch store reached as an ordinary role, as an operator's external database gives
    the layer: every right on the store's tables, no superuser."""
    role = f"automates_app_{uuid4().hex[:8]}"
    _sql(engine, f"CREATE ROLE {role} LOGIN")
    _sql(engine, f"GRANT USAGE ON SCHEMA automates TO {role}")
    _sql(engine, f"GRANT ALL ON ALL TABLES IN SCHEMA automates TO {role}")
    url = make_url(scratch_database).set(username=role).render_as_string(hide_password=False)
    yield url
    _sql(engine, f"REVOKE ALL ON ALL TABLES IN SCHEMA automates FROM {role}")
    _sql(engine, f"REVOKE USAGE ON SCHEMA automates FROM {role}")
    _sql(engine, f"DROP ROLE {role}")


def test_old_crashes_leave_only_through_a_privileged_archive(
    engine: Engine, app_role_url: str, scratch_database: str, tmp_path: Path
) -> None:
    for days_ago in (400, 380, 5):
        _crash(engine, days_ago)
    cutoff = datetime.now(UTC) - timedelta(days=365)

    # The layer's own role can neither rewrite, erase nor archive a crash.
    app = make_engine(app_role_url)
    try:
        for statement in (
            "UPDATE automates.crash_journal SET message = 'x'",
            "DELETE FROM automates.crash_journal",
        ):
            with pytest.raises(StoreError, match="append-only"):
                _sql(app, statement)
        with pytest.raises(StoreError, match="needs a superuser connection"):
            archive_crashes(app, cutoff, tmp_path / "refused.jsonl.gz")
    finally:
        app.dispose()
    assert _count(engine, "crash_journal") == 3
    assert not (tmp_path / "refused.jsonl.gz").exists()

    # As an operator does it, with a superuser connection.
    target = str(tmp_path / "crashes-2025.jsonl.gz")
    url = ("--database-url", scratch_database)
    bad = invoke(
        dict(os.environ), "archive-crashes", "--before", "last year", "--to", target, *url, code=2
    )
    assert "--before 'last year': give a date as YYYY-MM-DD" in bad.stdout + bad.stderr
    day = f"{cutoff:%Y-%m-%d}"
    archived = invoke_json(
        dict(os.environ), "archive-crashes", "--before", day, "--to", target, *url
    )
    assert archived["rows"] == 2
    lines = gzip.decompress((tmp_path / "crashes-2025.jsonl.gz").read_bytes()).splitlines()
    assert [json.loads(line)["id"] for line in lines] == [archived["first_id"], archived["last_id"]]
    assert _count(engine, "crash_journal") == 1  # the recent crash stays
    with pytest.raises(StoreError, match="exists"):
        archive_crashes(engine, cutoff, tmp_path / "crashes-2025.jsonl.gz")
    # Still append-only afterwards: the archive turned the triggers off for itself only.
    with pytest.raises(StoreError, match="append-only"):
        _sql(engine, "DELETE FROM automates.crash_journal")
