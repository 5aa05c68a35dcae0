"""The guard's pipeline on the in-memory orchestrator: the pre-checks' order, what each asks of
Prefect, the run's environment, and the attempts — in milliseconds, with no server. The same
paths run against a real server in tests/integration/test_guard.py, test_misfire.py and
test_schedule_server.py."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.states import Pending, Running

from automates.guard import attempts
from automates.guard.repair import LOG_DIR_ENV
from automates.guard.runner import BEFORE_PROCESS, PRECHECKS, Guard
from automates.registry.policy import GuardPolicy
from automates.scheduling.approval import Approval, Gate, gate
from automates.scheduling.concurrency import Concurrency
from automates.scheduling.misfire import Misfire
from automates.scheduling.quiet_hours import QuietHours
from automates.settings import Settings
from tests.fixtures.orchestrator import MemoryOrchestrator, run_context

NIGHT = QuietHours.model_validate(
    {"start": "22:00", "end": "07:00", "timezone": "UTC", "action": "defer"}
)
TICK = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # inside NIGHT


def policy(**fields: Any) -> GuardPolicy:
    data: dict[str, Any] = {
        "automate": "nightly",
        "timeout_seconds": 60,
        "retries": 0,
        "retry_backoff_seconds": 0.01,
        "soft_fail": False,
        # No concurrency slot: the slot is PostgreSQL's (tests/store/test_concurrency_slots.py).
        "concurrency": Concurrency.ALLOW,
    }
    data.update(fields)
    return GuardPolicy(**data)


def flow_run(deployment_id: Any, tick: datetime, **fields: Any) -> FlowRun:
    data: dict[str, Any] = {
        "flow_id": uuid4(),
        "deployment_id": deployment_id,
        "expected_start_time": tick,
        "start_time": tick,
        "state": Running(),
    }
    data.update(fields)
    return FlowRun.model_validate(data)


def guard(tmp_path: Path, orchestrator: MemoryOrchestrator, **fields: Any) -> Guard:
    settings = Settings(data_dir=tmp_path / "data", environment="production")
    return Guard(policy(**fields), settings, orchestrator)


def test_the_prechecks_run_in_one_visible_order() -> None:
    assert [check.name for check in PRECHECKS] == [
        "environment",
        "quiet-hours",
        "misfire",
        "approval",
        "concurrency",
    ]


def test_a_worker_asks_the_first_prechecks_in_the_same_order() -> None:
    names = [check.name for check in BEFORE_PROCESS]
    assert names == [check.name for check in PRECHECKS][: len(names)]
    assert names == ["environment", "quiet-hours", "misfire"]


def around_now(action: str) -> QuietHours:
    """A quiet window from an hour ago to an hour ahead."""
    now = datetime.now(UTC)
    return QuietHours.model_validate(
        {
            "start": (now - timedelta(hours=1)).strftime("%H:%M"),
            "end": (now + timedelta(hours=1)).strftime("%H:%M"),
            "timezone": "UTC",
            "action": action,
        }
    )


@pytest.mark.parametrize(
    ("fields", "minutes_late", "expected"),
    [
        ({"environments": ("staging",)}, 0, "Skipped"),
        ({"quiet_hours": around_now("defer")}, 0, "Deferred"),
        ({"quiet_hours": around_now("skip")}, 0, "Skipped"),
        ({"misfire": Misfire.SKIP}, 10, "Skipped"),
        ({"misfire": Misfire.SKIP}, 0, None),  # on time: its process runs it
        ({"misfire": Misfire.FIRE_ONCE}, 10, None),  # reads the outage: its process decides
        ({"misfire": Misfire.CATCH_UP}, 10, None),
    ],
)
def test_before_its_process_a_run_ends_as_its_process_would_end_it(
    tmp_path: Path, fields: dict[str, Any], minutes_late: int, expected: str | None
) -> None:
    """What a worker settles without a process (a run not started yet) is what the whole
    pipeline decides in the process, which asks later; what it leaves, it asked nothing of
    Prefect for."""
    orchestrator = MemoryOrchestrator()
    deployment = orchestrator.deployment()
    tick = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_late)
    waiting = flow_run(
        deployment.id,
        tick,
        start_time=None,
        auto_scheduled=True,
        idempotency_key=f"scheduled {deployment.id} s1 {tick}",
        state=Pending(),
    )
    chosen = guard(tmp_path, orchestrator, **fields)
    early = chosen.decide_before_process(chosen.begin(waiting))
    assert (early.name if early is not None else None) == expected
    if early is None:
        assert orchestrator.runs == {}
        return
    started = waiting.model_copy(update={"start_time": datetime.now(UTC), "state": Running()})
    full = chosen.decide(chosen.begin(started))
    assert full is not None and (full.type, full.name) == (early.type, early.name)


def test_the_first_refusal_ends_the_run_and_nothing_after_it_is_asked(tmp_path: Path) -> None:
    orchestrator = MemoryOrchestrator()
    deployment = orchestrator.deployment()
    # Wrong environment and inside the quiet window: the environment check answers first,
    # so quiet hours never defer (no run created).
    chosen = guard(tmp_path, orchestrator, environments=("staging",), quiet_hours=NIGHT)
    run = chosen.begin(flow_run(deployment.id, TICK))
    state = chosen.decide(run)
    assert state is not None and state.name == "Skipped"
    assert state.message == "skipped: runs only in staging; this is 'production'"
    assert orchestrator.runs == {}
    assert run.variables == {}  # refused before its environment was prepared


def test_a_deferral_asks_for_one_keyed_run_per_window(tmp_path: Path) -> None:
    orchestrator = MemoryOrchestrator()
    deployment = orchestrator.deployment()
    chosen = guard(tmp_path, orchestrator, quiet_hours=NIGHT)
    states = [
        chosen.decide(chosen.begin(flow_run(deployment.id, tick)))
        for tick in (TICK, TICK + timedelta(hours=1))
    ]
    [deferred] = orchestrator.runs.values()
    assert deferred.expected_start_time == datetime(2026, 3, 11, 7, 0, tzinfo=UTC)
    assert deferred.tags == ["quiet-hours:deferred", "principal:system"]  # the system asked
    for state in states:
        assert state is not None and state.name == "Deferred"
        assert f"(flow run {deferred.id})" in (state.message or "")


def test_a_late_run_of_fire_once_skips_all_but_the_newest_missed_tick(tmp_path: Path) -> None:
    orchestrator = MemoryOrchestrator()
    deployment = orchestrator.deployment()
    at = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    back = at + timedelta(hours=1)  # the worker came back; both ticks start now
    key = f"scheduled {deployment.id} s1"
    orchestrator.add(flow_run(deployment.id, at - timedelta(minutes=1), idempotency_key=f"{key} 0"))
    late = [
        orchestrator.add(
            flow_run(
                deployment.id,
                at + timedelta(minutes=minute),
                start_time=back + timedelta(seconds=minute),
                idempotency_key=f"{key} {minute}",
                auto_scheduled=True,
            )
        )
        for minute in (0, 1)
    ]
    chosen = guard(tmp_path, orchestrator, misfire=Misfire.FIRE_ONCE)
    older, newest = (chosen.decide(chosen.begin(run)) for run in late)
    assert older is not None and older.name == "Skipped"
    assert "misfire policy fire_once" in (older.message or "")
    assert newest is None  # the newest missed tick runs, once
    assert len(orchestrator.runs) == 3  # and no catch-up run was needed


def test_a_run_that_may_start_gets_its_log_folder_and_env_files_as_its_own_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LOG_DIR_ENV, raising=False)
    (tmp_path / "job.env").write_text("GUARD_PIPELINE_TEST_VAR=from-the-file\n")
    chosen = guard(tmp_path, MemoryOrchestrator(), env_files=("job.env",))
    run = chosen.begin(None)
    assert chosen.decide(run) is None
    assert run.variables == {
        LOG_DIR_ENV: str(tmp_path / "data" / "logs" / "nightly"),
        "GUARD_PIPELINE_TEST_VAR": "from-the-file",
    }
    assert run.journal.context == {"env_loaded": ["GUARD_PIPELINE_TEST_VAR"]}
    # A run that shares its process (an in-process worker) never writes its environment...
    assert "GUARD_PIPELINE_TEST_VAR" not in os.environ
    # ...but a command it starts gets them.
    assert run.command_environment({})["GUARD_PIPELINE_TEST_VAR"] == "from-the-file"


def test_attempts_retry_with_backoff_and_journal_each_failure() -> None:
    run = run_context(policy(retries=2), None)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("upstream refused")
        return "done"

    assert attempts.call(run, flaky, (), {}) == "done"
    assert run.journal.attempts == 3
    assert [f.error_class for f in run.journal.failures] == ["ConnectionError"] * 2
    assert all(f.fix_applied for f in run.journal.failures)  # transient network: retried


def test_attempts_give_up_after_the_declared_retries_with_the_last_error() -> None:
    run = run_context(policy(retries=1), None)

    def broken() -> None:
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        attempts.call(run, broken, (), {})
    assert run.journal.attempts == 2 and len(run.journal.failures) == 2


def test_an_exit_0_completes_and_keeps_the_code() -> None:
    run = run_context(policy(), None)

    def exits() -> None:
        raise SystemExit(0)

    state = attempts.call(run, exits, (), {})
    assert state.is_completed() and state.message == "exited 0"
    assert run.journal.exit_code == 0


def test_the_async_driver_follows_the_same_rule() -> None:
    import asyncio

    run = run_context(policy(retries=1), None)
    calls: list[int] = []

    async def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("slow upstream")
        return 7

    assert asyncio.run(attempts.call_async(run, flaky, (), {})) == 7
    assert run.journal.attempts == 2


@pytest.mark.parametrize(
    ("policy_", "versioned", "approved", "can_wait", "expected"),
    [
        (Approval.NONE, False, False, False, Gate.GO),
        (Approval.BEFORE_ENABLE, False, False, True, Gate.NO_VERSION),
        (Approval.BEFORE_ENABLE, True, True, True, Gate.GO),
        (Approval.BEFORE_ENABLE, True, False, True, Gate.NOT_APPROVED),
        (Approval.BEFORE_FIRST_RUN, True, False, True, Gate.WAIT),
        (Approval.BEFORE_FIRST_RUN, True, False, False, Gate.CANNOT_WAIT),
        (Approval.BEFORE_FIRST_RUN, True, True, False, Gate.GO),
    ],
)
def test_the_approval_rule(
    policy_: Approval, versioned: bool, approved: bool, can_wait: bool, expected: Gate
) -> None:
    assert gate(policy_, versioned=versioned, approved=approved, can_wait=can_wait) is expected


def test_runs_side_by_side_in_one_process_each_write_their_own_journal() -> None:
    # As on an in-process worker: two runs' bodies in two threads of one process, both inside
    # the guard at once, each calling the journal API with no reference to its run.
    import threading

    from automates.guard import journal
    from automates.guard.context import current, in_force

    runs = [run_context(policy(automate=name), None) for name in ("first", "second")]
    both_inside = threading.Barrier(2, timeout=10)
    seen: dict[str, str | None] = {}

    def body(run: Any) -> None:
        with in_force(run):
            journal.bump("rows", 1)
            both_inside.wait()  # the other run is inside too: any shared journal shows now
            journal.bump("rows", 1)
            journal.note(me=run.automate)
            found = current()
            seen[run.automate] = found.automate if found is not None else None

    threads = [threading.Thread(target=body, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    for run in runs:
        assert run.journal.counters == {"rows": 2}
        assert run.journal.context == {"me": run.automate}
    assert seen == {"first": "first", "second": "second"}
    assert current() is None and journal.current() is None  # nothing left behind


# Named, not given as pids: both test processes must collect the same parameters.
RECORDED = {"another": "4194999", "own": str(os.getpid()), "parent": str(os.getppid())}


@pytest.mark.parametrize(
    ("whose", "superseded"),
    [
        ("another", True),  # a re-submission handed the run to another process
        ("own", False),  # this process is the run's
        ("parent", False),  # started through a shell: its parent is recorded
        (None, False),  # no worker recorded any process: nothing says this is not the one
    ],
)
def test_a_process_a_resubmission_superseded_leaves_before_anything_else(
    tmp_path: Path, whose: str | None, superseded: bool
) -> None:
    recorded = RECORDED[whose] if whose is not None else None
    orchestrator = MemoryOrchestrator()
    deployment = orchestrator.deployment()
    current = flow_run(deployment.id, TICK, infrastructure_pid=recorded)
    orchestrator.add(current)
    settings = Settings(data_dir=tmp_path / "data", environment="production")
    owner = Guard(policy(environments=("staging",)), settings, orchestrator, owns_process=True)
    left: list[str] = []
    owner.leave = lambda run, pid: left.append(pid)  # the real one ends the process
    state = owner.decide(owner.begin(current))
    assert left == ([recorded] if superseded else [])
    assert orchestrator.read == [current.id]  # read fresh: the engine's copy may be stale
    assert state is not None and state.name == "Skipped"  # then the pre-checks, as ever


def test_a_run_of_an_in_process_worker_never_asks(tmp_path: Path) -> None:
    orchestrator = MemoryOrchestrator()
    current = flow_run(orchestrator.deployment().id, TICK, infrastructure_pid="4194999")
    orchestrator.add(current)
    shared = guard(tmp_path, orchestrator)  # owns_process=False: the worker's own process
    shared.leave = lambda run, pid: pytest.fail("an in-process run never leaves the process")
    assert shared.decide(shared.begin(current)) is None
    assert orchestrator.read == []
