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

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from automates.guard import journal
from automates.guard.recording import store
from automates.registry.policy import GuardPolicy
from automates.scheduling.concurrency import Concurrency
from automates.settings import Settings
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

logger = logging.getLogger("automates.guard")


def wait_budget(timeout_seconds: float, elapsed: float) -> float:
    """Seconds a run may still wait for its slot: what is left of its timeout, less a margin,
    so that the guard's own verdict ends the run before Prefect's timeout does."""
    margin = min(5.0, timeout_seconds / 10)
    return max(0.0, timeout_seconds - margin - elapsed)


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


@contextmanager
def slot(policy: GuardPolicy, settings: Settings) -> Iterator[State | None]:
    """Held for the run's attempts: yields None when the run may go on, or the state that ends
    it (e.g. Skipped) when it may not."""
    exclusive = policy.concurrency is not Concurrency.ALLOW
    if not exclusive and not policy.advisory_lock:
        yield None
        return
    try:
        connection = store(settings.store_block).connect()
    except Exception as error:
        if policy.advisory_lock:
            raise  # money or durable data never runs without its lock
        # Like the journals, the slot never stops a run on its own: the run goes on, and says
        # which check it ran without.
        _log().warning(
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
            _current_run_id(),
        )
        try:
            yield enter(slots, policy, settings)
        finally:
            try:
                slots.release()
            except Exception as error:
                # A session that may still hold a lock must never go back to the pool; closing
                # it frees its locks. Not raised: it would hide the run's own outcome.
                connection.invalidate()
                _log().warning("concurrency: slot of %s released by closing: %s", slots.me, error)


def enter(slots: Slots, policy: GuardPolicy, settings: Settings | None = None) -> State | None:
    """Take the run's slot under its policy; None, or the state that ends the run."""
    if policy.concurrency is not Concurrency.ALLOW:
        deadline = time.monotonic() + wait_budget(policy.timeout_seconds, _elapsed())
        refused = POLICIES[policy.concurrency](slots, policy, deadline, settings)
        if refused is not None:
            return refused
    if policy.advisory_lock and not slots.take(TOUCHES):
        return Completed(
            name="Skipped",
            message=f"skipped: another run of {policy.automate} holds its advisory lock",
        )
    return None


def forbid(
    slots: Slots, policy: GuardPolicy, deadline: float, settings: Settings | None = None
) -> State | None:
    while not slots.take(ACTIVE):
        active = slots.holder(ACTIVE)
        if active is not None or time.monotonic() >= deadline:
            return skipped(f"{_run(active)} of {policy.automate} is active", policy)
        # Released between the two statements: try again.
    return None


def queue_one(
    slots: Slots, policy: GuardPolicy, deadline: float, settings: Settings | None = None
) -> State | None:
    while not slots.take(WAITING):
        active, waiting = slots.holder(ACTIVE), slots.holder(WAITING)
        if (active is not None and waiting is not None) or time.monotonic() >= deadline:
            return skipped(
                f"{_run(active)} of {policy.automate} is active and {_run(waiting)} waits",
                policy,
            )
        # The waiting place is changing hands (its run is taking the slot): look again.
        time.sleep(POLL_SECONDS / 5)
    try:
        if slots.take(ACTIVE):
            return None
        active = slots.holder(ACTIVE)
        started = time.monotonic()
        _log().info(
            "waiting for %s of %s to finish (concurrency: queue_one; at most %.0f s)",
            _run(active),
            policy.automate,
            max(0.0, deadline - started),
        )
        while not slots.take(ACTIVE):
            if time.monotonic() >= deadline:
                return skipped(
                    f"{_run(active)} of {policy.automate} was still active after "
                    f"{time.monotonic() - started:.0f} s of waiting, as long as this run's "
                    "timeout allows",
                    policy,
                )
            time.sleep(POLL_SECONDS)
        _log().info("%s is over: this run starts (waited %.1f s)", _run(active), _since(started))
        return None
    finally:
        slots.drop(WAITING)


def replace(
    slots: Slots, policy: GuardPolicy, deadline: float, settings: Settings | None = None
) -> State | None:
    deadline = min(deadline, time.monotonic() + REPLACE_WAIT_SECONDS)
    started = time.monotonic()
    cancelled: list[str] = []
    active: str | None = None
    while not slots.take(ACTIVE):
        active = slots.holder(ACTIVE)
        if active and active not in cancelled:
            cancel_run(active, replaced_message(slots.me, policy.automate))
            cancelled.append(active)
            _log().info(
                "replacing run %s of %s: cancelled it; waiting up to %.0f s for it to stop "
                "(concurrency: replace)",
                active,
                policy.automate,
                max(0.0, deadline - time.monotonic()),
            )
        if time.monotonic() >= deadline:
            return Failed(
                message=f"could not replace {_run(active)} of {policy.automate}: still active "
                f"{_since(started):.0f} s after its cancellation (concurrency: replace)"
            )
        time.sleep(POLL_SECONDS)
    if cancelled:
        _log().info("replaced run(s) %s: this run starts", ", ".join(cancelled))
    for run_id in cancelled:
        _finish_replaced(run_id, slots.me, policy, settings)
    return None


POLICIES: dict[
    Concurrency, Callable[[Slots, GuardPolicy, float, Settings | None], State | None]
] = {
    Concurrency.FORBID: forbid,
    Concurrency.QUEUE_ONE: queue_one,
    Concurrency.REPLACE: replace,
}


def skipped(why: str, policy: GuardPolicy) -> State:
    return Completed(
        name="Skipped", message=f"skipped: {why} (concurrency: {policy.concurrency.value})"
    )


def replaced_message(by: str, automate: str) -> str:
    return f"cancelled: replaced by run {by} of {automate} (concurrency: replace)"


def cancel_run(run_id: str, message: str) -> None:
    """Ask Prefect to cancel a run, as the UI's Cancel button does: its worker kills it."""
    from prefect import get_client
    from prefect.states import Cancelling

    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(run_id), Cancelling(message=message))
    except Exception as error:  # the wait that follows says whether it stopped
        _log().warning("could not ask Prefect to cancel run %s: %s", run_id, error)


def _finish_replaced(run_id: str, by: str, policy: GuardPolicy, settings: Settings | None) -> None:
    """Once the replaced run is Cancelled, give that state the readable message (Prefect's
    runner ends it "Flow run was cancelled successfully.") and journal it: its process was
    killed, so its own journal hook never ran. Never fails the new run."""
    from prefect import get_client
    from prefect.states import Cancelled

    message = replaced_message(by, policy.automate)
    try:
        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(UUID(run_id))
            ends = time.monotonic() + FINAL_STATE_WAIT_SECONDS
            while not (flow_run.state and flow_run.state.is_final()) and time.monotonic() < ends:
                time.sleep(POLL_SECONDS)
                flow_run = client.read_flow_run(UUID(run_id))
            state = flow_run.state
            if state is None or not state.is_cancelled():
                return  # it ended otherwise (or not yet), and journals itself
            if state.message != message:
                client.set_flow_run_state(flow_run.id, Cancelled(message=message), force=True)
                flow_run = client.read_flow_run(flow_run.id)
        if settings is not None and flow_run.state is not None:
            _journal_replaced(flow_run, by, policy, settings)
    except Exception as error:
        _log().warning("could not record run %s as replaced: %s", run_id, error)


def _journal_replaced(flow_run: Any, by: str, policy: GuardPolicy, settings: Settings) -> None:
    from automates.guard.recording import record_run

    started = flow_run.start_time or datetime.now(UTC)
    run = journal.RunJournal(
        automate=policy.automate, started_at=started, context={"replaced_by": by}
    )
    record_run(settings, policy, run, flow_run, flow_run.state, datetime.now(UTC))


def _run(holder: str | None) -> str:
    return f"run {holder}" if holder else "another run"


def _since(started: float) -> float:
    return time.monotonic() - started


def _elapsed() -> float:
    """Seconds since the guard began this run (the start of its timeout, near enough)."""
    run = journal.current()
    return 0.0 if run is None else (datetime.now(UTC) - run.started_at).total_seconds()


def _current_run_id() -> str:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return str(context.flow_run.id) if context is not None and context.flow_run else "unknown"


def _log() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    from automates.guard.runner import run_logger

    return run_logger()
