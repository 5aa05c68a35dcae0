"""The few Prefect operations the guard needs, behind one small interface.

The pre-checks read runs and deployments, create keyed runs, cancel a run, pause or resume a
deployment's schedules and emit events. They do it through `Orchestrator`, so the pipeline can
be tested on an in-memory orchestrator (tests/fixtures/orchestrator.py) in milliseconds, and
a reader sees in one place every call the guard makes to the Prefect API.

`PrefectOrchestrator` is the real one: Prefect's synchronous client, one connection per call
(a run makes a handful of calls at most, most runs none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import DeploymentResponse

from automates import principal

PAGE = 200


@dataclass(frozen=True)
class NewRun:
    """A Scheduled run of a deployment the guard asks for: the same key always names the same
    run, so every run that asks for it gets that one."""

    deployment_id: UUID
    scheduled_time: datetime
    idempotency_key: str
    # The guard's own runs (a deferred or catch-up run) are the system's (automates/principal.py).
    tags: tuple[str, ...] = (principal.tag(principal.SYSTEM),)
    parameters: Mapping[str, Any] | None = None
    message: str | None = None


@dataclass(frozen=True)
class Event:
    """A Prefect event the guard emits (an operator hangs notifications on it)."""

    name: str
    resource: dict[str, str]
    related: list[dict[str, str]] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)
    id: UUID = field(default_factory=uuid4)
    occurred: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The event this one must be processed after (Prefect's causal ordering: its automations
    # see a follower only once they have seen its leader); within five minutes of it.
    follows: Event | None = None


class Orchestrator(Protocol):
    """What the guard asks of Prefect while a run is being decided."""

    def read_run(self, run_id: UUID) -> FlowRun: ...

    def read_deployment(self, deployment_id: UUID) -> DeploymentResponse: ...

    def starts_around(self, deployment_id: UUID, moment: datetime) -> list[datetime]:
        """The deployment's last run start at or before `moment`, and its first after it."""
        ...

    def runs_due_between(
        self, deployment_id: UUID, after: datetime | None, before: datetime
    ) -> list[FlowRun]:
        """Every run of the deployment expected to start between `after` (None: any time
        before) and `before`, both included, oldest first."""
        ...

    def finished_runs(self, deployment_id: UUID, limit: int) -> list[FlowRun]:
        """The deployment's runs that ended, newest end first."""
        ...

    def create_run(self, run: NewRun) -> UUID:
        """The id of the run `run` asks for, created if its key names none yet."""
        ...

    def cancel_run(self, run_id: UUID, message: str) -> None:
        """Ask for the run's cancellation (Cancelling), as the UI's Cancel button does."""
        ...

    def explain_cancelled(self, run_id: UUID, message: str) -> None:
        """Give an already Cancelled run a readable message (see decision 0040)."""
        ...

    def set_schedules_active(self, deployment_id: UUID, *, active: bool) -> None: ...

    def emit(self, event: Event) -> None: ...


class PrefectOrchestrator:
    """The orchestrator of a real run: the Prefect API the run's process is configured for."""

    def read_run(self, run_id: UUID) -> FlowRun:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            return client.read_flow_run(run_id)

    def read_deployment(self, deployment_id: UUID) -> DeploymentResponse:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            return client.read_deployment(deployment_id)

    def starts_around(self, deployment_id: UUID, moment: datetime) -> list[datetime]:
        from prefect import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterDeploymentId,
            FlowRunFilterStartTime,
        )
        from prefect.client.schemas.sorting import FlowRunSort

        ours = FlowRunFilterDeploymentId(any_=[deployment_id])
        # Prefect filters and sorts "start time" on coalesce(start_time, expected_start_time):
        # without is_null_=False a run still waiting would pass for a start.
        started = {"is_null_": False}
        with get_client(sync_client=True) as client:
            nearest = [
                client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        deployment_id=ours,
                        start_time=FlowRunFilterStartTime.model_validate({side: moment, **started}),
                    ),
                    sort=sort,
                    limit=1,
                )
                for side, sort in (
                    ("before_", FlowRunSort.START_TIME_DESC),
                    ("after_", FlowRunSort.START_TIME_ASC),
                )
            ]
        return [r.start_time for runs in nearest for r in runs if r.start_time]

    def runs_due_between(
        self, deployment_id: UUID, after: datetime | None, before: datetime
    ) -> list[FlowRun]:
        from prefect import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterDeploymentId,
            FlowRunFilterExpectedStartTime,
        )
        from prefect.client.schemas.sorting import FlowRunSort

        # Prefect's stubs name its own DateTime type; any aware datetime validates.
        window = FlowRunFilterExpectedStartTime.model_validate({"after_": after, "before_": before})
        query = FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
            expected_start_time=window,
        )
        runs: list[FlowRun] = []
        with get_client(sync_client=True) as client:
            while True:
                page = client.read_flow_runs(
                    flow_run_filter=query,
                    sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                    limit=PAGE,
                    offset=len(runs),
                )
                runs.extend(page)
                if len(page) < PAGE:
                    return runs

    def finished_runs(self, deployment_id: UUID, limit: int) -> list[FlowRun]:
        from prefect import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterDeploymentId,
            FlowRunFilterEndTime,
        )
        from prefect.client.schemas.sorting import FlowRunSort

        with get_client(sync_client=True) as client:
            return client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
                    end_time=FlowRunFilterEndTime(is_null_=False),
                ),
                sort=FlowRunSort.END_TIME_DESC,
                limit=limit,
            )

    def create_run(self, run: NewRun) -> UUID:
        from prefect import get_client
        from prefect.states import Scheduled

        with get_client(sync_client=True) as client:
            made = client.create_flow_run_from_deployment(
                run.deployment_id,
                parameters=dict(run.parameters) if run.parameters is not None else None,
                state=Scheduled(scheduled_time=run.scheduled_time, message=run.message),
                tags=list(run.tags),
                idempotency_key=run.idempotency_key,
            )
        return made.id

    def cancel_run(self, run_id: UUID, message: str) -> None:
        from prefect import get_client
        from prefect.states import Cancelling

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run_id, Cancelling(message=message))

    def explain_cancelled(self, run_id: UUID, message: str) -> None:
        from prefect import get_client
        from prefect.states import Cancelled

        with get_client(sync_client=True) as client:
            # Final to final: Prefect's orchestration rules refuse it unless forced.
            client.set_flow_run_state(run_id, Cancelled(message=message), force=True)

    def set_schedules_active(self, deployment_id: UUID, *, active: bool) -> None:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            deployment = client.read_deployment(deployment_id)
            for schedule in deployment.schedules:
                if schedule.active != active:
                    client.update_deployment_schedule(deployment_id, schedule.id, active=active)

    def emit(self, event: Event) -> None:
        from prefect.events import Event as PrefectEvent
        from prefect.events import emit_event

        leader = None
        if event.follows is not None:
            first = event.follows
            required = {"event": first.name, "resource": first.resource}
            leader = PrefectEvent.model_validate(  # Prefect reads only its id and time
                required | {"id": first.id, "occurred": first.occurred}
            )
        # emit_event(event, resource, occurred, related, payload, id, follows)
        e = event
        emit_event(e.name, e.resource, e.occurred, e.related, e.payload, e.id, leader)
