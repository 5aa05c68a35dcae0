"""Writing a finished run to the journals in the store (reached through the store block)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime
from functools import cache
from typing import Any

from prefect.client.schemas.objects import FlowRun, State, StateType
from sqlalchemy import Connection, Engine

from automates import principal
from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.guard import breaker
from automates.guard.journal import Attempt, RunJournal
from automates.registry.policy import GuardPolicy
from automates.scheduling.breaker import Transition
from automates.settings import Settings
from automates.states import FAILURE, SUCCESS, BreakerState, RetryOutcome, RunOutcome
from automates.store.engine import session_engine, transaction
from automates.store.journals import Crash, Execution, record_crash, record_execution

# Final states the guard names itself; any other is known by its type.
_OUTCOME_BY_NAME = {
    "Findings": RunOutcome.FINDINGS,
    "Skipped": RunOutcome.SKIPPED,
    "Deferred": RunOutcome.SKIPPED,  # quiet hours: this run did nothing; a later one will
    "Held": RunOutcome.SKIPPED,  # misfire: did nothing; the automate waits for operator review
    "TimedOut": RunOutcome.TIMED_OUT,
}
_OUTCOME_BY_TYPE = {
    StateType.COMPLETED: RunOutcome.COMPLETED,
    StateType.CRASHED: RunOutcome.CRASHED,
    StateType.CANCELLED: RunOutcome.CANCELLED,
}


def principal_of(flow_run: FlowRun) -> str:
    """Who asked for the run (automates/principal.py), from its tags and its creation."""
    created = flow_run.created_by
    return principal.of_run(
        flow_run.tags or (),
        auto_scheduled=bool(flow_run.auto_scheduled),
        created_by_type=created.type if created is not None else None,
        created_by_name=created.display_value if created is not None else None,
    )


def outcome_of(state: State) -> RunOutcome:
    """The journal's outcome for a final Prefect state."""
    if state.name in _OUTCOME_BY_NAME:
        return _OUTCOME_BY_NAME[state.name]
    return _OUTCOME_BY_TYPE.get(state.type, RunOutcome.FAILED)


# One load of the store's engines at a time: a run asking while `load_store_ahead` loads them
# waits for that load instead of reading the block a second time.
_LOADING = threading.RLock()


def store(block_name: str) -> Engine:
    """The store's engine in this run's process, from the store block (one per process)."""
    with _LOADING:
        return _store(block_name)


def session_store(block_name: str) -> Engine:
    """The store without a pool, for the connection a run holds while it runs (its concurrency
    slot): never one of the shared pool's few connections (store/engine.py session_engine)."""
    with _LOADING:
        return _session_store(block_name)


def load_store_ahead(block_name: str) -> None:
    """Load the store's engines in the background, while Prefect's engine starts the run: the
    block's read (an API call) is then off the way to the run's body. A load that fails is
    tried again by whoever asks next, as before."""

    def load() -> None:
        with contextlib.suppress(Exception):
            session_store(block_name)

    threading.Thread(target=load, name="automates-store-ahead", daemon=True).start()


def forget_stores() -> None:
    """Forget this process's store engines, as a fresh process starts without them (the guard
    bench's cold run); the caller disposes of them first."""
    with _LOADING:
        _session_store.cache_clear()
        _store.cache_clear()


@cache
def _store(block_name: str) -> Engine:
    from blocks.store import store_engine_from_block

    return store_engine_from_block(block_name)


@cache
def _session_store(block_name: str) -> Engine:
    return session_engine(_store(block_name))


def record_run(
    settings: Settings,
    policy: GuardPolicy,
    run: RunJournal,
    flow_run: FlowRun,
    state: State,
    finished_at: datetime,
) -> Transition:
    """Journal the run and count it on the automate's breaker; the breaker's transition (for
    the caller to apply outside the transaction)."""
    flow_run_id = flow_run.id

    outcome = outcome_of(state)
    if outcome in FAILURE and len(run.failures) < run.attempts:
        # The last attempt ended outside the guard's hands (timeout, crash): journal it too.
        run.failures.append(
            Attempt(
                number=run.attempts,
                error_class=state.name or "Failed",
                message=state.message or "",
                traceback="",
            )
        )
    failed_attempts = {failure.number for failure in run.failures}
    crashes = []
    for failure in run.failures:
        if failure.number >= run.attempts:
            retry_outcome = RetryOutcome.NONE  # no attempt came after this one
        elif failure.number + 1 in failed_attempts or outcome not in SUCCESS:
            retry_outcome = RetryOutcome.FAILED
        else:
            retry_outcome = RetryOutcome.SUCCEEDED
        crashes.append(
            Crash(
                **_same_named(Crash, failure),  # its error, message, traceback and fix
                automate=run.automate,
                flow_run_id=flow_run_id,
                attempt=failure.number,
                occurred_at=failure.at,
                retry_outcome=retry_outcome,
                breaker_state=None,  # known once the run is counted, below
            )
        )
    execution = Execution(
        **_same_named(Execution, run),  # its automate, start, attempts, what it recorded
        flow_run_id=flow_run_id,
        finished_at=max(finished_at, run.started_at),
        duration_seconds=max(0.0, (finished_at - run.started_at).total_seconds()),
        outcome=outcome,
        message=state.message,
        principal=principal_of(flow_run),
    )
    with transaction(store(settings.store_block)) as connection:
        if not record_execution(connection, execution):
            # Journaled already (a replayed hook): count it once, change nothing.
            closed = BreakerState.CLOSED
            return Transition(run.automate, closed, closed, 0, replayed=True)
        transition = count_and_report(connection, execution, crashes, policy)
    assert transition is not None  # a policy always counts
    return transition


def _same_named(row: type[Crash | Execution], kept: Attempt | RunJournal) -> dict[str, Any]:
    """What the guard kept of an attempt or a run, for each field the journal's `row` names
    the same: the row takes those values as they are."""
    kept_names = {field.name for field in fields(kept)}
    return {
        column.name: getattr(kept, column.name)
        for column in fields(row)
        if column.name in kept_names
    }


def count_and_report(
    connection: Connection,
    execution: Execution,
    crashes: Sequence[Crash],
    policy: GuardPolicy | None,
) -> Transition | None:
    """What follows a run's new execution row, in the same transaction: its outcome counted on
    the automate's breaker (when its policy is known), its failed attempts written to the crash
    journal with the breaker's state after them, and the alerts of the facts they report
    (decision 0033). The guard's hook and run-watch's settling both end a run this way. The
    breaker's transition, for the caller to apply once committed."""
    transition = None
    if policy is not None:
        transition = breaker.record_outcome(
            connection,
            execution.automate,
            execution.outcome,
            threshold=policy.breaker_threshold,
            cooldown_seconds=policy.breaker_cooldown_seconds,
        )
    after = transition.after if transition else None
    for crash in crashes:
        record_crash(connection, replace(crash, breaker_state=after))
    _raise_run_alerts(
        connection,
        execution,
        transition,
        policy.breaker_cooldown_seconds if policy else 0,
    )
    return transition


def _raise_run_alerts(
    connection: Connection,
    execution: Execution,
    transition: Transition | None,
    cooldown_seconds: int,
) -> None:
    """The alerts of a journaled run: its outcome, its breaker's transition, the end of a
    missed-tick condition; in the journal's transaction."""
    automate, outcome, flow_run_id = execution.automate, execution.outcome, execution.flow_run_id
    told = catalog.run_outcome(automate, outcome, execution.message, flow_run_id)
    if told is not None:
        raise_alert(connection, told)
    if transition is not None and transition.tripped:
        raise_alert(
            connection, catalog.breaker_opened(automate, transition.failures, cooldown_seconds)
        )
    elif transition is not None and transition.closed:
        raise_alert(connection, catalog.breaker_closed(automate))
    if outcome in SUCCESS:  # ends a missed-tick condition, if one is open
        raise_alert(connection, catalog.tick_recovered(automate, flow_run_id))
