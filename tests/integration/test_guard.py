"""The guard around real runs: scripts and flows started by a real worker through Prefect."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.objects import FlowRun
from sqlalchemy import text

from automates.errors import StoreError
from automates.settings import Settings
from automates.store.engine import make_engine, transaction
from tests.fixtures.commands import invoke_json
from tests.fixtures.projects import Project, automate, script
from tests.fixtures.servers import cli_env, run_all


def journal(settings: Settings, table: str, flow_run: FlowRun) -> list[dict[str, Any]]:
    """The run's rows in a journal. The guard writes them from the run's final-state hooks,
    just after the state the caller saw: wait until the execution row is there."""
    engine = make_engine(settings.database_url or "")
    deadline = time.monotonic() + 20
    try:
        while True:
            with engine.connect() as connection:
                written = connection.execute(
                    text("SELECT 1 FROM automates.execution_journal WHERE flow_run_id = :id"),
                    {"id": flow_run.id},
                ).first()
                rows = connection.execute(
                    text(f"SELECT * FROM automates.{table} WHERE flow_run_id = :id ORDER BY id"),
                    {"id": flow_run.id},
                )
                found = [dict(r._mapping) for r in rows]
            if written or time.monotonic() > deadline:
                return found
            time.sleep(0.2)
    finally:
        engine.dispose()


@pytest.fixture
def guarded_project(server: Settings, project: Project, worker: str, tmp_path: Path) -> Settings:
    (project.root / "guard.env").write_text("GREETING=from-the-env-file\n")
    export_target = project.settings(server).data_path / "exports" / "today" / "out.csv"
    return project.declare_and_sync(
        server,
        script("cert-audit", ["scripts/audit.sh"], family="audits", work_pool=worker),
        # 10 s, not less: the timeout covers the guard's pre-checks (API reads) before the
        # script starts, and on a loaded machine 3 s ran out before it wrote its pid.
        script(
            "slow-export",
            ["scripts/slow.sh", str(tmp_path / "slow.pid")],
            timeout_seconds=10,
            work_pool=worker,
        ),
        script("broken-export", ["scripts/broken.sh"], family="exports", work_pool=worker),
        script("greeter", ["scripts/greet.sh"], env_files=["guard.env"], work_pool=worker),
        # A script's arguments are part of its declaration: no run can change them.
        script(
            "exporter",
            ["scripts/export.sh", str(export_target)],
            family="exports",
            work_pool=worker,
        ),
        script(
            "stray-export",
            ["scripts/export.sh", str(tmp_path / "not-ours" / "out.csv")],
            family="exports",
            work_pool=worker,
        ),
        script("prod-only", ["scripts/greet.sh"], environments=["production"], work_pool=worker),
        automate(
            "py-audit",
            kind="oneshot",
            schedules=[],
            entrypoint="flows/exit_audit.py:exit_audit",
            family="audits",
            work_pool=worker,
        ),
        automate(
            "py-exit",
            kind="oneshot",
            schedules=[],
            entrypoint="flows/exit_audit.py:exit_audit",
            family="exports",
            retries=1,
            retry_backoff_seconds=0.5,
            work_pool=worker,
        ),
        automate(
            "flaky-sync",
            kind="oneshot",
            schedules=[],
            entrypoint="flows/flaky.py:flaky",
            retries=2,
            retry_backoff_seconds=0.5,
            work_pool=worker,
        ),
    )


def test_the_guard_contains_every_kind_of_run(guarded_project: Settings, tmp_path: Path) -> None:
    settings = guarded_project
    pid_file = tmp_path / "slow.pid"
    target = settings.data_path / "exports" / "today" / "out.csv"
    outside = tmp_path / "not-ours" / "out.csv"
    # Runs of different automates at once (the worker starts each in its own process); runs of
    # the same automate one after the other, as its default concurrency policy wants.
    first = asyncio.run(
        run_all(
            settings,
            ("script/cert-audit", {}),
            ("exit-audit/py-audit", {}),
            ("exit-audit/py-exit", {"code": 3}),
            ("script/slow-export", {}),
            ("script/broken-export", {}),
            ("script/exporter", {}),
            ("script/greeter", {}),
            ("script/prod-only", {}),
            ("flaky/flaky-sync", {"marker": str(tmp_path / "flaky.marker")}),
        )
    )
    audit, py_audit, py_exit, slow, broken, exporter, greeter, skipped, flaky = first
    py_audit_ok, refused = asyncio.run(
        run_all(
            settings,
            ("exit-audit/py-audit", {"code": 0}),
            ("script/stray-export", {}),
        )
    )

    # Soft-fail: the audit's exit 2 is findings, with the exit code kept.
    assert audit.state_name == "Findings"
    assert audit.state is not None and audit.state.is_completed()
    [row] = journal(settings, "execution_journal", audit)
    assert (row["outcome"], row["exit_code"], row["attempts"]) == ("findings", 2, 1)
    assert journal(settings, "crash_journal", audit) == []

    # The same for a Python audit that exits 2; exit 0 completes.
    assert py_audit.state_name == "Findings"
    [row] = journal(settings, "execution_journal", py_audit)
    assert (row["outcome"], row["exit_code"]) == ("findings", 2)
    assert py_audit_ok.state_name == "Completed"
    # Its worker recorded the process it started, and that process found itself recorded
    # (a process a re-submission superseded leaves before its body: guard/submission.py).
    assert py_audit_ok.infrastructure_pid is not None
    # Not an audit: a non-zero exit is a failure, retried like any other.
    assert py_exit.state_name == "Failed"
    crashes = journal(settings, "crash_journal", py_exit)
    assert [(c["attempt"], c["error_class"], c["retry_outcome"]) for c in crashes] == [
        (1, "ExitedNonZero", "failed"),
        (2, "ExitedNonZero", "none"),
    ]

    # Timeout: the run is stopped, its state says why, and the script's process is gone.
    assert slow.state_name == "TimedOut"
    assert slow.state is not None
    assert "exceeded timeout of 10.0 second" in (slow.state.message or "")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    [row] = journal(settings, "execution_journal", slow)
    assert row["outcome"] == "timed_out" and 9 <= row["duration_seconds"] < 60  # from the body
    [crash] = journal(settings, "crash_journal", slow)
    assert (crash["error_class"], crash["retry_outcome"]) == ("TimedOut", "none")

    # A failing script: the run fails with its exit code and stderr; the crash is journaled.
    assert broken.state_name == "Failed"
    [crash] = journal(settings, "crash_journal", broken)
    assert crash["error_class"] == "ScriptFailed"
    assert "exited with 3" in crash["message"] and "/nonexistent/export.csv" in crash["message"]
    assert "Traceback" in crash["traceback"]

    # Self-repair: the missing folder (inside the data folder) is created, the retry succeeds.
    assert exporter.state_name == "Completed"
    assert target.read_text() == "id,amount\n"
    [crash] = journal(settings, "crash_journal", exporter)
    assert crash["fix_applied"] == f"created missing directory {target.parent}"
    assert crash["retry_outcome"] == "succeeded"
    # ... but never outside it: no fix, no retry.
    assert refused.state_name == "Failed" and not outside.parent.exists()
    [crash] = journal(settings, "crash_journal", refused)
    assert "not created (outside the data folder)" in crash["fix_applied"]

    # Env files are loaded before the run, without overwriting.
    assert greeter.state_name == "Completed"
    [row] = journal(settings, "execution_journal", greeter)
    assert row["context"]["env_loaded"] == ["GREETING"]

    # The environment guard: skipped, not failed.
    assert skipped.state_name == "Skipped"
    assert skipped.state is not None and skipped.state.is_completed()
    [row] = journal(settings, "execution_journal", skipped)
    assert row["outcome"] == "skipped"

    # Retries with backoff: the first attempt fails, the retry succeeds; both journaled.
    assert flaky.state_name == "Completed"
    [row] = journal(settings, "execution_journal", flaky)
    assert row["attempts"] == 2 and row["counters"] == {"attempts_seen": 2}
    assert [s["step"] for s in row["steps"]] == ["checking marker", "checking marker"]
    [crash] = journal(settings, "crash_journal", flaky)
    assert (crash["attempt"], crash["error_class"], crash["retry_outcome"]) == (
        1,
        "ConnectionError",
        "succeeded",
    )

    # The CLI shows both journals.
    env = cli_env(settings)
    logs = invoke_json(env, "logs", "flaky-sync")
    assert [(r["outcome"], r["attempts"]) for r in logs] == [("completed", 2)]
    crashes = invoke_json(env, "crashes")
    assert {c["automate"] for c in crashes} >= {"slow-export", "broken-export", "flaky-sync"}
    [only] = invoke_json(env, "crashes", "flaky-sync")
    assert only["retry_outcome"] == "succeeded" and only["breaker_state"] == "closed"


def test_the_crash_journal_is_append_only(scratch_database: str) -> None:
    from automates.store.engine import migrate

    engine = make_engine(scratch_database)
    migrate(engine)
    with transaction(engine) as connection:
        connection.execute(
            text(
                "INSERT INTO automates.crash_journal (automate, flow_run_id, attempt, error_class,"
                " message, traceback, retry_outcome) VALUES ('a1', gen_random_uuid(), 1, 'E',"
                " 'm', 't', 'none')"
            )
        )
    for statement in (
        "UPDATE automates.crash_journal SET message = 'rewritten'",
        "DELETE FROM automates.crash_journal",
        "TRUNCATE automates.crash_journal",
    ):
        with pytest.raises(StoreError, match="append-only"), transaction(engine) as connection:
            connection.execute(text(statement))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT message FROM automates.crash_journal")).all() == [
            ("m",)
        ]
    engine.dispose()
