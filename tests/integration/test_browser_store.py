"""Job records: the claim is atomic, a code is handed out once, bad rows are impossible."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from automates.errors import StoreError
from automates.store import browser_jobs
from automates.store.engine import make_engine, migrate, transaction


def test_of_many_concurrent_claims_exactly_one_wins(scratch_database: str) -> None:
    engine = make_engine(scratch_database)
    migrate(engine)
    with transaction(engine) as connection:
        job_id = browser_jobs.insert_job(connection, "page_snapshot", {"url": "http://x.test/"}, 30)

    def claim(host: str) -> dict[str, object] | None:
        with transaction(engine) as connection:
            return browser_jobs.claim_job(connection, job_id, host)

    with ThreadPoolExecutor(4) as pool:
        claims = list(pool.map(claim, [f"host-{n}" for n in range(8)]))
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1 and winners[0]["kind"] == "page_snapshot"
    with transaction(engine) as connection:
        row = browser_jobs.read_job(connection, job_id)
        assert row is not None and (row["status"], row["attempts"]) == ("running", 1)
        # Only the claiming host may finish it, and only once.
        assert not browser_jobs.finish_job(connection, job_id, "intruder", "done", {}, None, {})
        assert browser_jobs.finish_job(
            connection, job_id, row["host"], "failed", None, "boom", {"a": 1}
        )
        assert not browser_jobs.finish_job(connection, job_id, row["host"], "done", {}, None, {})
        ended = browser_jobs.read_job(connection, job_id)
    assert ended is not None and (ended["status"], ended["result"]) == ("failed", None)
    engine.dispose()


def test_a_second_factor_code_is_handed_out_once(scratch_database: str) -> None:
    engine = make_engine(scratch_database)
    migrate(engine)
    with transaction(engine) as connection:
        job_id = browser_jobs.insert_job(connection, "portal_login", {"mailbox": "a@b"}, 30)
        browser_jobs.claim_job(connection, job_id, "home")
        browser_jobs.deliver_code(connection, "a@b", "123456")
        job = browser_jobs.read_job(connection, job_id)
        assert job is not None
        assert browser_jobs.take_code(connection, "a@b", job) == "123456"
        assert browser_jobs.take_code(connection, "a@b", job) is None
        assert browser_jobs.take_code(connection, "other@b", job) is None
    engine.dispose()


@pytest.mark.parametrize(
    ("column", "value"),
    [("status", "Done"), ("kind", "Page Snapshot"), ("timeout_seconds", 0), ("attempts", -1)],
)
def test_the_database_refuses_bad_job_rows(
    scratch_database: str, column: str, value: object
) -> None:
    engine = make_engine(scratch_database)
    migrate(engine)
    row = {"id": uuid.uuid4(), "kind": "page_snapshot", "timeout_seconds": 30, "attempts": 0}
    row["status"] = "queued"
    row[column] = value
    with pytest.raises(StoreError), transaction(engine) as connection:
        connection.execute(
            text(
                "INSERT INTO automates.browser_jobs (id, kind, payload, status, timeout_seconds,"
                " attempts) VALUES (:id, :kind, '{}', :status, :timeout_seconds, :attempts)"
            ),
            row,
        )
    engine.dispose()
