"""The circuit breaker's effects: counting a run on its automate's breaker, then pausing or
resuming the deployment's schedules, a warning in the run's log and a Prefect event.

The transitions themselves are the pure rule of automates/scheduling/breaker.py. When a breaker
opens its schedules are paused on the server, one warning is logged and one
`automates.breaker.opened` event is emitted (an operator hangs notifications on it with a
Prefect automation); a failed probe emits `probe_failed`, a recovery `closed`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from automates.guard.logs import run_logger
from automates.guard.orchestrator import Event, Orchestrator
from automates.scheduling.breaker import Transition, after_run
from automates.states import RunOutcome
from automates.store.breakers import lock_breaker, save_breaker

logger = logging.getLogger("automates.breaker")


def record_outcome(
    connection: Connection,
    automate: str,
    outcome: RunOutcome,
    *,
    threshold: int,
    cooldown_seconds: int,
    now: datetime | None = None,
) -> Transition:
    """Count one run's outcome on the automate's breaker (in the caller's transaction)."""
    before = lock_breaker(connection, automate)
    after = after_run(
        before,
        outcome,
        threshold=threshold,
        cooldown_seconds=cooldown_seconds,
        now=now or datetime.now(UTC),
    )
    if after != before:
        save_breaker(connection, after)
    return Transition.between(before, after)


def apply(
    transition: Transition,
    deployment_id: UUID | None,
    schedules_active: bool,
    orchestrator: Orchestrator,
) -> None:
    """The effects of a transition outside the store: schedules, log line, event."""
    if transition.replayed or not (transition.opened or transition.closed):
        return
    if deployment_id is not None:
        orchestrator.set_schedules_active(
            deployment_id, active=transition.closed and schedules_active
        )
    if transition.tripped:
        run_logger().warning(
            "circuit breaker of %s opened after %d consecutive failures: schedules paused",
            transition.automate,
            transition.failures,
        )
        _emit(orchestrator, transition, "opened")
    elif transition.opened:
        run_logger().warning("probe of %s failed: breaker re-opened", transition.automate)
        _emit(orchestrator, transition, "probe_failed")
    else:
        run_logger().warning("circuit breaker of %s closed: schedules resumed", transition.automate)
        _emit(orchestrator, transition, "closed")


def deployment_of(automate: str) -> UUID | None:
    """The id of the deployment this tool made for `automate` (deployments are named after
    their automate)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from automates.registry.model import MANAGED_TAG

    with get_client(sync_client=True) as client:
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[automate]))
        )
    ours = [d for d in found if MANAGED_TAG in d.tags]
    return ours[0].id if ours else None


def _emit(orchestrator: Orchestrator, transition: Transition, what: str) -> None:
    payload: dict[str, Any] = {"consecutive_failures": transition.failures}
    resource = {
        "prefect.resource.id": f"automates.automate.{transition.automate}",
        "prefect.resource.name": transition.automate,
    }
    orchestrator.emit(Event(f"automates.breaker.{what}", resource=resource, payload=payload))
