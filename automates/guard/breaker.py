"""The circuit breaker: stop scheduling an automate that keeps failing, probe, recover.

closed --(threshold consecutive failures)--> open: its schedules are paused on the server,
one warning is logged and one `automates.breaker.opened` event is emitted (an operator hangs
notifications on it with a Prefect automation); a failed probe emits `probe_failed`, a
recovery `closed`. After the cool-down the `breaker-probe`
automate starts one run (half_open): success closes the breaker and resumes the schedules,
failure re-opens it. Success or findings reset the count; skipped or cancelled runs count for
nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from automates.store.breakers import lock_breaker, save_breaker

logger = logging.getLogger("automates.breaker")

SUCCESS = frozenset({"completed", "findings"})
FAILURE = frozenset({"failed", "timed_out", "crashed"})


@dataclass(frozen=True)
class Transition:
    automate: str
    before: str
    after: str
    failures: int
    replayed: bool = False

    @property
    def opened(self) -> bool:
        return self.before != "open" and self.after == "open"

    @property
    def tripped(self) -> bool:
        """The threshold was reached: the one moment that notifies."""
        return self.before == "closed" and self.after == "open"

    @property
    def closed(self) -> bool:
        return self.before != "closed" and self.after == "closed"


def record_outcome(
    connection: Connection,
    automate: str,
    outcome: str,
    *,
    threshold: int,
    cooldown_seconds: int,
    now: datetime | None = None,
) -> Transition:
    """Count one run's outcome on the automate's breaker (in the caller's transaction)."""
    now = now or datetime.now(UTC)
    row = lock_breaker(connection, automate)
    state, failures = row["state"], row["consecutive_failures"]
    after = state
    if outcome in SUCCESS:
        failures, after = 0, "closed"
    elif outcome in FAILURE:
        failures += 1
        if state == "half_open" or (state == "closed" and failures >= threshold):
            after = "open"
    if (after, failures) != (state, row["consecutive_failures"]):
        save_breaker(
            connection,
            automate,
            state=after,
            consecutive_failures=failures,
            opened_at=None if after == "closed" else (now if after != state else row["opened_at"]),
            cooldown_seconds=cooldown_seconds,
            probe_started_at=None if after != "half_open" else row["probe_started_at"],
        )
    return Transition(automate, state, after, failures)


def apply(transition: Transition, deployment_id: UUID | None, schedules_active: bool) -> None:
    """The effects of a transition outside the store: schedules, log line, event."""
    if transition.replayed or not (transition.opened or transition.closed):
        return
    from automates.guard.runner import run_logger

    if deployment_id is not None:
        set_schedules_active(deployment_id, active=transition.closed and schedules_active)
    if transition.tripped:
        run_logger().warning(
            "circuit breaker of %s opened after %d consecutive failures: schedules paused",
            transition.automate,
            transition.failures,
        )
        _emit(transition, "opened")
    elif transition.opened:
        run_logger().warning("probe of %s failed: breaker re-opened", transition.automate)
        _emit(transition, "probe_failed")
    else:
        run_logger().warning("circuit breaker of %s closed: schedules resumed", transition.automate)
        _emit(transition, "closed")


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


def set_schedules_active(deployment_id: UUID, *, active: bool) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(deployment_id)
        for schedule in deployment.schedules:
            if schedule.active != active:
                client.update_deployment_schedule(deployment_id, schedule.id, active=active)


def _emit(transition: Transition, what: str) -> None:
    from prefect.events import emit_event

    payload: dict[str, Any] = {"consecutive_failures": transition.failures}
    emit_event(
        event=f"automates.breaker.{what}",
        resource={
            "prefect.resource.id": f"automates.automate.{transition.automate}",
            "prefect.resource.name": transition.automate,
        },
        payload=payload,
    )
