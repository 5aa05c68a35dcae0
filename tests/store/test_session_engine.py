"""The connections runs hold while they run (their concurrency slots) are sessions of their
own, never the shared pool's: many guarded runs in one process (the agent dispatcher, the warm
worker) must leave the others' short statements a connection."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from sqlalchemy import text

from automates.store.engine import make_engine, session_engine, transaction
from automates.store.taskruns import task_runs_in_flight
from tests.fixtures.stores import platform_store


def test_sessions_held_by_runs_leave_the_shared_pool_free(scratch_database: str) -> None:
    shared = make_engine(scratch_database)  # 2 connections and 3 more at most
    sessions = session_engine(shared)
    held = [sessions.connect() for _ in range(8)]  # eight runs holding their slots
    try:
        pids = {c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in held}
        assert len(pids) == 8
        for number, connection in enumerate(held):
            connection.execute(text("SELECT pg_advisory_lock(:n)"), {"n": number})
        assert shared.pool.checkedout() == 0  # type: ignore[attr-defined]
        with transaction(shared) as connection:  # served at once, not after a 30 s wait
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        for connection in held:
            connection.close()  # closing the session frees its locks
        shared.dispose()
    check = make_engine(scratch_database)
    with transaction(check) as connection:
        locks = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert connection.execute(text(locks)).scalar_one() == 0
    check.dispose()


def test_a_check_in_does_not_count_its_own_task_run(scratch_database: str, tmp_path: Path) -> None:
    engine = platform_store(scratch_database, tmp_path)
    own, other = uuid4(), uuid4()
    with transaction(engine) as connection:
        for task_run in (own, other):
            connection.execute(
                text(
                    "INSERT INTO automates.task_runs (id, codename, agent, prompt, template,"
                    " perimeter, timeout_seconds, status, attempts) VALUES (:id, 'c', 'scout',"
                    " 'p', 'heartbeat', 'platform', 60, 'running', 1)"
                ),
                {"id": task_run},
            )
        assert task_runs_in_flight(connection, "scout") == 2
        assert task_runs_in_flight(connection, "scout", but=own) == 1
        connection.execute(text("DELETE FROM automates.task_runs WHERE id = :id"), {"id": other})
        assert task_runs_in_flight(connection, "scout", but=own) == 0
    engine.dispose()
