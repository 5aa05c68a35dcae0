"""The guard's concurrency slot: whether a run may start beside its automate's active run.

The policies of automates/scheduling/concurrency.py, held with PostgreSQL advisory locks on a
store connection of the run's own, so a run whose process dies frees its place at once:

- `forbid`, `queue_one`, `replace`: the run holding the automate's "active" lock is the
  active run. Each run names its session after itself (application_name), so a newcomer can
  read from pg_locks which run holds the slot, and say so.
  - forbid: the lock is taken, or the run ends Skipped naming the active run.
  - queue_one: a run first takes the "waiting" lock, the one place in the queue, then the
    active lock, waiting for it if need be; so a newcomer never overtakes the waiting run.
    A run that finds the waiting place taken ends Skipped. The wait counts in the run's
    timeout: it gives up, Skipped, shortly before the timeout would strike.
  - replace: the active run is cancelled through Prefect (Cancelling, naming the new run; its
    worker kills it), and the new run takes the lock once it is free. It then gives the
    replaced run's Cancelled state the readable message, and journals it, since a killed run
    cannot. If the lock is not freed in time, the new run fails saying so.
- `allow`: no slot here; Prefect's deployment concurrency limit bounds the runs at once.

Under every policy, an automate that touches money or durable data also takes its own
advisory lock ("run"), the second layer it always had.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, State
from prefect.states import Completed, Failed

from automates.guard.context import RunContext
from automates.guard.journal import RunJournal
from automates.guard.recording import record_run, session_store
from automates.scheduling.concurrency import Concurrency, wait_budget
from automates.store.journals import (
    lock_holder,
    name_session,
    release_advisory_lock,
    try_advisory_lock,
)

# The lock purposes (automates/store/journals.py builds the keys).
ACTIVE = "active"
WAITING = "waiting"
TOUCHES = "run"
SESSION_PREFIX = "automates run "
# How long a replacing run waits for the replaced one to die: Prefect's runner sends SIGTERM,
# then SIGKILL after 30 s, once its cancellation observer has seen the Cancelling state.
REPLACE_WAIT_SECONDS = 60.0
# How long it then waits for Prefect to record the replaced run's Cancelled state.
FINAL_STATE_WAIT_SECONDS = 15.0
POLL_SECONDS = 0.25
UNKNOWN = ""  # a holder whose session names no run


def holder_of(application_name: str | None) -> str | None:
    """The run named by a lock holder's application_name; UNKNOWN for a session that names no
    run; None when nobody holds the lock."""
    if application_name is None:
        return None
    if application_name.startswith(SESSION_PREFIX):
        return application_name.removeprefix(SESSION_PREFIX)
    return UNKNOWN


class Slots:
    """One run's advisory locks on its own store connection (autocommit)."""

    def __init__(self, connection: Any, automate: str, me: str) -> None:
        self.connection = connection
        self.automate = automate
        self.me = me
        self.held: list[str] = []
        name_session(connection, SESSION_PREFIX + me)

    def take(self, purpose: str) -> bool:
        taken = try_advisory_lock(self.connection, self.automate, purpose)
        if taken:
            self.held.append(purpose)
        return taken

    def drop(self, purpose: str) -> None:
        release_advisory_lock(self.connection, self.automate, purpose)
        self.held.remove(purpose)

    def holder(self, purpose: str) -> str | None:
        return holder_of(lock_holder(self.connection, self.automate, purpose))

    def release(self) -> None:
        for purpose in reversed(self.held):
            self.drop(purpose)


class ConcurrencyCheck:
    """The run takes its automate's slot, held until its attempts are over, or ends."""

    name = "concurrency"

    def check(self, run: RunContext) -> State | None:
        return run.held.enter_context(_slot(run))


@contextmanager
def _slot(run: RunContext) -> Iterator[State | None]:
    """Held for the run's attempts: yields None when the run may go on, or the state that ends
    it (e.g. Skipped) when it may not."""
    policy = run.policy
    exclusive = policy.concurrency is not Concurrency.ALLOW
    if not exclusive and not policy.advisory_lock:
        yield None
        return
    try:
        connection = session_store(run.settings.store_block).connect()
    except Exception as error:
        if policy.advisory_lock:
            raise  # money or durable data never runs without its lock
        # Like the journals, the slot never stops a run on its own: the run goes on, and says
        # which check it ran without.
        run.logger.warning(
            "concurrency: the store cannot be reached, so %s runs without its %s check: %s",
            policy.automate,
            policy.concurrency.value,
            error,
        )
        yield None
        return
    with connection:
        slots = Slots(
            connection.execution_options(isolation_level="AUTOCOMMIT"),
            policy.automate,
            run.run_id,
        )
        try:
            yield enter(slots, run)
        finally:
            try:
                slots.release()
            except Exception as error:
                # A session that may still hold a lock must never go back to the pool; closing
                # it frees its locks. Not raised: it would hide the run's own outcome.
                connection.invalidate()
                run.logger.warning(
                    "concurrency: slot of %s released by closing: %s", slots.me, error
                )


def enter(slots: Slots, run: RunContext) -> State | None:
    """Take the run's slot under its policy; None, or the state that ends the run."""
    policy = run.policy
    if policy.concurrency is not Concurrency.ALLOW:
        deadline = time.monotonic() + wait_budget(
            policy.timeout_seconds, run.journal.elapsed_seconds()
        )
        refused = POLICIES[policy.concurrency](slots, run, deadline)
        if refused is not None:
            return refused
    if policy.advisory_lock and not slots.take(TOUCHES):
        return Completed(
            name="Skipped",
            message=f"skipped: another run of {policy.automate} holds its advisory lock",
        )
    return None


def forbid(slots: Slots, run: RunContext, deadline: float) -> State | None:
    while not slots.take(ACTIVE):
        active = slots.holder(ACTIVE)
        if active is not None or time.monotonic() >= deadline:
            return skipped(f"{_run(active)} of {run.automate} is active", run)
        # Released between the two statements: try again.
    return None


def queue_one(slots: Slots, run: RunContext, deadline: float) -> State | None:
    while not slots.take(WAITING):
        active, waiting = slots.holder(ACTIVE), slots.holder(WAITING)
        if (active is not None and waiting is not None) or time.monotonic() >= deadline:
            return skipped(
                f"{_run(active)} of {run.automate} is active and {_run(waiting)} waits", run
            )
        # The waiting place is changing hands (its run is taking the slot): look again.
        time.sleep(POLL_SECONDS / 5)
    try:
        if slots.take(ACTIVE):
            return None
        active = slots.holder(ACTIVE)
        started = time.monotonic()
        run.logger.info(
            "waiting for %s of %s to finish (concurrency: queue_one; at most %.0f s)",
            _run(active),
            run.automate,
            max(0.0, deadline - started),
        )
        while not slots.take(ACTIVE):
            if time.monotonic() >= deadline:
                return skipped(
                    f"{_run(active)} of {run.automate} was still active after "
                    f"{time.monotonic() - started:.0f} s of waiting, as long as this run's "
                    "timeout allows",
                    run,
                )
            time.sleep(POLL_SECONDS)
        run.logger.info(
            "%s is over: this run starts (waited %.1f s)", _run(active), _since(started)
        )
        return None
    finally:
        slots.drop(WAITING)


def replace(slots: Slots, run: RunContext, deadline: float) -> State | None:
    deadline = min(deadline, time.monotonic() + REPLACE_WAIT_SECONDS)
    started = time.monotonic()
    cancelled: list[str] = []
    active: str | None = None
    while not slots.take(ACTIVE):
        active = slots.holder(ACTIVE)
        if active and active not in cancelled:
            _cancel(run, active, replaced_message(slots.me, run.automate))
            cancelled.append(active)
            run.logger.info(
                "replacing run %s of %s: cancelled it; waiting up to %.0f s for it to stop "
                "(concurrency: replace)",
                active,
                run.automate,
                max(0.0, deadline - time.monotonic()),
            )
        if time.monotonic() >= deadline:
            return Failed(
                message=f"could not replace {_run(active)} of {run.automate}: still active "
                f"{_since(started):.0f} s after its cancellation (concurrency: replace)"
            )
        time.sleep(POLL_SECONDS)
    if cancelled:
        run.logger.info("replaced run(s) %s: this run starts", ", ".join(cancelled))
    for run_id in cancelled:
        _finish_replaced(run, run_id, slots.me)
    return None


POLICIES: dict[Concurrency, Callable[[Slots, RunContext, float], State | None]] = {
    Concurrency.FORBID: forbid,
    Concurrency.QUEUE_ONE: queue_one,
    Concurrency.REPLACE: replace,
}


def skipped(why: str, run: RunContext) -> State:
    return Completed(
        name="Skipped", message=f"skipped: {why} (concurrency: {run.policy.concurrency.value})"
    )


def replaced_message(by: str, automate: str) -> str:
    return f"cancelled: replaced by run {by} of {automate} (concurrency: replace)"


def _cancel(run: RunContext, run_id: str, message: str) -> None:
    """Ask Prefect to cancel a run, as the UI's Cancel button does: its worker kills it."""
    try:
        run.orchestrator.cancel_run(UUID(run_id), message)
    except Exception as error:  # the wait that follows says whether it stopped
        run.logger.warning("could not ask Prefect to cancel run %s: %s", run_id, error)


def _finish_replaced(run: RunContext, run_id: str, by: str) -> None:
    """Once the replaced run is Cancelled, give that state the readable message (Prefect's
    runner ends it "Flow run was cancelled successfully.") and journal it: its process was
    killed, so its own journal hook never ran. Never fails the new run."""
    message = replaced_message(by, run.automate)
    try:
        replaced = run.orchestrator.read_run(UUID(run_id))
        ends = time.monotonic() + FINAL_STATE_WAIT_SECONDS
        while not (replaced.state and replaced.state.is_final()) and time.monotonic() < ends:
            time.sleep(POLL_SECONDS)
            replaced = run.orchestrator.read_run(replaced.id)
        state = replaced.state
        if state is None or not state.is_cancelled():
            return  # it ended otherwise (or not yet), and journals itself
        if state.message != message:
            run.orchestrator.explain_cancelled(replaced.id, message)
            replaced = run.orchestrator.read_run(replaced.id)
        if replaced.state is not None:
            _journal_replaced(run, replaced, by)
    except Exception as error:
        run.logger.warning("could not record run %s as replaced: %s", run_id, error)


def _journal_replaced(run: RunContext, replaced: FlowRun, by: str) -> None:
    assert replaced.state is not None
    started = replaced.start_time or datetime.now(UTC)
    record = RunJournal(automate=run.automate, started_at=started, context={"replaced_by": by})
    record_run(run.settings, run.policy, record, replaced, replaced.state, datetime.now(UTC))


def _run(holder: str | None) -> str:
    return f"run {holder}" if holder else "another run"


def _since(started: float) -> float:
    return time.monotonic() - started
