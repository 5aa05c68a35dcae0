"""Holding an automate for operator review, from inside one of its runs.

A hold is an open row in the store's `holds` table (automates/store/holds.py); while it is
open the deployment's schedules stay paused, through the Prefect API as the circuit breaker
pauses them, and sync and reconcile keep them so (automates/store/held.py). Opening it emits
one Prefect event, `automates.automate.held`: the notification, on which an operator hangs a
Prefect automation, as for `automates.breaker.opened`. `automates release NAME` closes it.
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State
from prefect.states import Completed

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.guard.context import RunContext
from automates.guard.orchestrator import Event
from automates.guard.recording import store
from automates.scheduling.misfire import Decision, show
from automates.store.engine import transaction
from automates.store.holds import open_hold, released_since

HELD_EVENT = "automates.automate.held"
REASON = "misfire"


def hold_for_review(run: RunContext, decision: Decision) -> State:
    """The state that ends a run whose outage the policy holds: Held. The first run of the
    outage to get here opens the hold, pauses the schedules and emits the event; the others
    find it open. A hold for this outage already released means the operator has reviewed it:
    the run is then skipped."""
    automate = run.automate
    hold_id: int | None = None
    with transaction(store(run.settings.store_block)) as connection:
        # Released at or after the recovery: it was opened for this outage (no new tick can
        # join an outage once it is over), and an operator let the automate go on.
        released = released_since(connection, automate, REASON, decision.recovered_at)
        if released is None:
            hold_id = open_hold(connection, automate, REASON, decision.summary)
            if hold_id is not None:
                raise_alert(connection, catalog.held(automate, decision.summary))
    if released is not None:
        assert released.released_at is not None  # released_since finds released holds only
        return Completed(
            name="Skipped",
            message=f"skipped: its outage was held for review, and released by "
            f"{released.released_by} at {show(released.released_at)}",
        )
    if hold_id is not None:
        assert run.deployment_id is not None
        run.orchestrator.set_schedules_active(run.deployment_id, active=False)
        run.logger.warning(
            "%s held for operator review: %s; schedules paused", automate, decision.summary
        )
        _emit(run, hold_id, decision)
    return Completed(
        name="Held",
        message=f"held for operator review: {decision.summary}; "
        f"`automates release {automate}` resumes the schedules",
    )


def _emit(run: RunContext, hold_id: int, decision: Decision) -> None:
    ticks = [r.tick.at for r in decision.rulings]
    payload: dict[str, Any] = {
        "hold_id": hold_id,
        "reason": REASON,
        "policy": decision.policy.value,
        "missed": len(ticks),
        "oldest": min(ticks).isoformat(),
        "newest": max(ticks).isoformat(),
        "recovered_at": decision.recovered_at.isoformat(),
        "detail": decision.summary,
    }
    event = Event(
        HELD_EVENT,
        resource={
            "prefect.resource.id": f"automates.automate.{run.automate}",
            "prefect.resource.name": run.automate,
        },
        related=[
            {
                "prefect.resource.id": f"prefect.deployment.{run.deployment_id}",
                "prefect.resource.role": "deployment",
            },
            {
                "prefect.resource.id": f"prefect.flow-run.{run.run_id}",
                "prefect.resource.role": "flow-run",
            },
        ],
        payload=payload,
    )
    run.orchestrator.emit(event)
