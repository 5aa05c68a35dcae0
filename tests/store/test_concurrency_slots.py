"""The guard's concurrency slot on a real PostgreSQL: each "run" is a store connection of its
own, as in the guard, with no Prefect server (replace's cancellation goes to an in-memory
orchestrator, which closes the holder's connection, as its killed process would)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prefect.client.schemas.objects import State
from sqlalchemy import Connection, Engine

from automates.guard import concurrency
from automates.guard.concurrency import ACTIVE, WAITING, Slots
from automates.registry.policy import GuardPolicy
from automates.scheduling.concurrency import Concurrency
from automates.store.engine import make_engine
from tests.fixtures.orchestrator import MemoryOrchestrator, run_context
from tests.fixtures.shipped_runs import met_another_run


def enter(slots: Slots, policy: GuardPolicy, orchestrator: Any = None) -> State | None:
    """The slot taken as the guard takes it, for a run of `policy`."""
    return concurrency.enter(slots, run_context(policy, None, orchestrator))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


class Runs:
    """Runs of one automate, each on its own connection; closing one is its process dying."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.automate = f"slot-{uuid.uuid4().hex[:8]}"
        self.connections: dict[str, Connection] = {}

    def start(self, name: str) -> Slots:
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.connections[name] = connection
        return Slots(connection, self.automate, name)

    def die(self, name: str) -> None:
        self.connections.pop(name).invalidate()  # the session ends, as when its process dies

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


@pytest.fixture
def runs(engine: Engine) -> Iterator[Runs]:
    made = Runs(engine)
    yield made
    made.close()


def policy(runs: Runs, concurrency_: Concurrency, **fields: Any) -> GuardPolicy:
    return GuardPolicy(
        automate=runs.automate,
        timeout_seconds=fields.pop("timeout_seconds", 60),
        retries=0,
        retry_backoff_seconds=1,
        soft_fail=False,
        concurrency=concurrency_,
        **fields,
    )


def until(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_forbid_skips_a_second_run_naming_the_active_one(runs: Runs) -> None:
    forbid = policy(runs, Concurrency.FORBID)
    first = runs.start("run-a")
    assert enter(first, forbid) is None
    refused = enter(runs.start("run-b"), forbid)
    assert refused is not None and refused.name == "Skipped"
    assert (
        refused.message == f"skipped: run run-a of {runs.automate} is active (concurrency: forbid)"
    )
    assert met_another_run(refused)  # the integration tests' helper asks for such a run again


def test_a_dead_run_frees_its_slot_when_its_session_ends(runs: Runs) -> None:
    forbid = policy(runs, Concurrency.FORBID)
    assert enter(runs.start("run-a"), forbid) is None
    observer = runs.start("observer")
    runs.die("run-a")  # no release: the process is gone
    # PostgreSQL releases the slot as its backend notices the closed socket and exits: no
    # lease to run out, but not synchronous with the close either (a loaded CI machine
    # showed the gap).
    until(lambda: observer.holder(ACTIVE) is None)
    assert enter(runs.start("run-b"), forbid) is None
    assert observer.holder(ACTIVE) == "run-b"


def test_queue_one_lets_one_wait_skips_the_next_and_hands_over(runs: Runs) -> None:
    queue = policy(runs, Concurrency.QUEUE_ONE)
    assert enter(runs.start("run-a"), queue) is None
    observer = runs.start("observer")
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(enter, runs.start("run-b"), queue)
        until(lambda: observer.holder(WAITING) == "run-b")
        third = enter(runs.start("run-c"), queue)
        assert third is not None and third.name == "Skipped"
        assert third.message == (
            f"skipped: run run-a of {runs.automate} is active and run run-b waits "
            "(concurrency: queue_one)"
        )
        assert not waiting.done()
        runs.die("run-a")
        assert waiting.result(timeout=10) is None
    assert observer.holder(ACTIVE) == "run-b"
    assert observer.holder(WAITING) is None  # the place in the queue is free again


def test_a_newcomer_does_not_overtake_the_waiting_run(runs: Runs) -> None:
    queue = policy(runs, Concurrency.QUEUE_ONE)
    first = runs.start("run-a")
    assert enter(first, queue) is None
    observer = runs.start("observer")
    with ThreadPoolExecutor(2) as pool:
        waiting = pool.submit(enter, runs.start("run-b"), queue)
        until(lambda: observer.holder(WAITING) == "run-b")
        first.release()  # the active run ends normally, and run-c comes as the slot changes hands
        late = pool.submit(enter, runs.start("run-c"), queue)
        assert waiting.result(timeout=10) is None
        until(lambda: observer.holder(WAITING) == "run-c")
        assert observer.holder(ACTIVE) == "run-b"  # run-c queued behind run-b
        runs.die("run-b")
        assert late.result(timeout=10) is None
    assert observer.holder(ACTIVE) == "run-c"


def test_queue_one_gives_up_within_its_timeout(runs: Runs) -> None:
    queue = policy(runs, Concurrency.QUEUE_ONE, timeout_seconds=2)  # waits at most 1.8 s
    assert enter(runs.start("run-a"), queue) is None
    refused = enter(runs.start("run-b"), queue)
    assert refused is not None and refused.name == "Skipped"
    assert refused.message == (
        f"skipped: run run-a of {runs.automate} was still active after 2 s of waiting, "
        "as long as this run's timeout allows (concurrency: queue_one)"
    )
    assert runs.start("observer").holder(WAITING) is None


class Killing(MemoryOrchestrator):
    """Cancelling a run kills it, as its worker does: its session ends."""

    def __init__(self, runs: Runs) -> None:
        super().__init__()
        self.slots = runs

    def cancel_run(self, run_id: uuid.UUID, message: str) -> None:
        super().cancel_run(run_id, message)
        self.slots.die(str(run_id))


def test_replace_cancels_the_active_run_and_takes_its_slot(runs: Runs) -> None:
    replace = policy(runs, Concurrency.REPLACE)
    orchestrator = Killing(runs)
    run_a, run_b = str(uuid.uuid4()), str(uuid.uuid4())
    assert enter(runs.start(run_a), replace, orchestrator) is None
    assert enter(runs.start(run_b), replace, orchestrator) is None
    assert orchestrator.cancelled == [
        (
            uuid.UUID(run_a),
            f"cancelled: replaced by run {run_b} of {runs.automate} (concurrency: replace)",
        )
    ]
    assert runs.start("observer").holder(ACTIVE) == run_b
    # Then it looked the replaced run up to finish its state and journal (with no server here,
    # not found; tests/integration/test_overlap.py covers that part).
    assert orchestrator.read == [uuid.UUID(run_a)]


def test_replace_says_so_when_the_active_run_does_not_stop(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(concurrency, "REPLACE_WAIT_SECONDS", 0.3)
    replace = policy(runs, Concurrency.REPLACE)
    orchestrator = MemoryOrchestrator()  # asked to cancel, and the run never dies
    run_a = str(uuid.uuid4())
    assert enter(runs.start(run_a), replace, orchestrator) is None
    refused = enter(runs.start(str(uuid.uuid4())), replace, orchestrator)
    assert refused is not None and refused.is_failed()
    message = refused.message or ""
    assert message.startswith(f"could not replace run {run_a} of {runs.automate}: still active ")
    assert message.endswith(" s after its cancellation (concurrency: replace)")
    assert runs.start("observer").holder(ACTIVE) == run_a
    assert [run_id for run_id, _ in orchestrator.cancelled] == [uuid.UUID(run_a)]


def test_the_touches_lock_still_holds_under_every_policy(runs: Runs) -> None:
    other_host = runs.start("elsewhere")  # e.g. a run of another deployment of the automate
    assert other_host.take(concurrency.TOUCHES)
    for name, each in enumerate(Concurrency):
        if each is Concurrency.ALLOW:
            continue  # refused with touches at declaration
        slots = runs.start(f"run-{name}")
        refused = enter(slots, policy(runs, each, advisory_lock=True))
        assert refused is not None and refused.name == "Skipped", each
        assert refused.message == f"skipped: another run of {runs.automate} holds its advisory lock"
        assert met_another_run(refused)
        slots.release()


def test_allow_takes_no_slot(runs: Runs) -> None:
    allow = policy(runs, Concurrency.ALLOW)
    assert enter(runs.start("run-a"), allow) is None
    assert enter(runs.start("run-b"), allow) is None
    assert runs.start("observer").holder(ACTIVE) is None
