"""The deployment each declaration should be, and the same shape read back from the server.

Sync and reconcile both compare a `DeploymentSpec` built from the registry with one built from
the server's answer; keeping both in one shape makes "no change" a plain equality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from automates.registry.entrypoints import flow_target
from automates.registry.model import MANAGED_TAG, Automate, Registry
from automates.registry.policy import job_variables
from automates.scheduling.concurrency import Concurrency
from automates.scheduling.realise import PrefectSchedule, prefect_schedule
from automates.server.triggers import TriggerSpec, declared_triggers

SET_WORKING_DIRECTORY = "prefect.deployments.steps.set_working_directory"
# Every deployment sync writes has this one pull step: "stay in the folder the run starts in",
# which the layer's workers make their own checkout. No host's path is in the deployment, so
# a worker on any host, with a checkout at any path, runs the same deployment from its own
# files (docs/decisions/0037-workers-run-their-own-checkout.md).
WORKER_CHECKOUT = "."
PULL_STEPS: tuple[dict[str, Any], ...] = ({SET_WORKING_DIRECTORY: {"directory": WORKER_CHECKOUT}},)


def runs_in_worker_checkout(pull_steps: Any) -> bool:
    """Whether a deployment's pull steps are sync's: the run starts in its worker's checkout."""
    return tuple(pull_steps or ()) == PULL_STEPS


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    slug: str | None
    cron: str | None  # a cron schedule (six fields when it carries a jitter offset)
    timezone: str | None
    active: bool
    parameters: dict[str, Any] = {}
    interval_seconds: float | None = None  # an interval schedule...
    anchor: str | None = None  # ...and its anchor, ISO 8601 in UTC
    rrule: str | None = None  # an rrule schedule (a one-off `at`)

    @property
    def declarable(self) -> bool:
        """True if this is one of the shapes sync writes (cron, interval or rrule)."""
        return self.cron is not None or self.interval_seconds is not None or bool(self.rrule)

    def prefect_schedule(self) -> PrefectSchedule:
        from datetime import datetime, timedelta

        from prefect.client.schemas.schedules import (
            CronSchedule,
            IntervalSchedule,
            RRuleSchedule,
        )

        if self.cron is not None:
            return CronSchedule(cron=self.cron, timezone=self.timezone)
        if self.interval_seconds is not None:
            assert self.anchor is not None
            return IntervalSchedule(
                interval=timedelta(seconds=self.interval_seconds),
                anchor_date=datetime.fromisoformat(self.anchor),
                timezone=self.timezone,
            )
        assert self.rrule is not None
        return RRuleSchedule(rrule=self.rrule, timezone=self.timezone)

    @classmethod
    def of(
        cls, schedule: Any, slug: str | None, active: bool, parameters: dict[str, Any]
    ) -> ScheduleSpec:
        """The spec of a Prefect schedule object (client or server schema)."""
        interval = getattr(schedule, "interval", None)
        anchor = getattr(schedule, "anchor_date", None)
        return cls(
            slug=slug,
            cron=getattr(schedule, "cron", None),
            timezone=getattr(schedule, "timezone", None),
            active=active,
            parameters=parameters,
            interval_seconds=None if interval is None else interval.total_seconds(),
            anchor=None if anchor is None else _utc_iso(anchor),
            rrule=getattr(schedule, "rrule", None),
        )


class DeploymentSpec(BaseModel):
    """The fields of a Prefect deployment that the registry decides."""

    model_config = ConfigDict(frozen=True)

    flow_name: str
    name: str
    entrypoint: str | None
    path: str | None
    work_pool: str | None
    schedules: tuple[ScheduleSpec, ...]
    concurrency_limit: int | None
    tags: tuple[str, ...]
    description: str | None
    paused: bool
    parameters: dict[str, Any]
    parameter_schema: dict[str, Any] | None
    pull_steps: tuple[dict[str, Any], ...]
    job_variables: dict[str, Any]
    triggers: tuple[TriggerSpec, ...] = ()  # Prefect automations owned by the deployment

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"

    @property
    def managed(self) -> bool:
        return MANAGED_TAG in self.tags

    @property
    def active_schedules(self) -> tuple[ScheduleSpec, ...]:
        return () if self.paused else tuple(s for s in self.schedules if s.active)


# Fields whose difference reconcile reports as a mismatch (schedule activity is an orphan).
COMPARED_FIELDS = (
    "entrypoint",
    "path",
    "work_pool",
    "schedules",
    "concurrency_limit",
    "tags",
    "description",
    "paused",
    "parameters",
    "parameter_schema",
    "pull_steps",
    "job_variables",
    "triggers",
)


def differences(declared: DeploymentSpec, deployed: DeploymentSpec) -> dict[str, tuple[Any, Any]]:
    """field → (declared, deployed) for every field that differs."""
    return {
        field: (getattr(declared, field), getattr(deployed, field))
        for field in COMPARED_FIELDS
        if getattr(declared, field) != getattr(deployed, field)
    }


def declared_spec(
    automate: Automate, root: Path, default_pool: str, *, held: bool = False
) -> DeploymentSpec:
    """The deployment an automate should be; `held`: its circuit breaker is open, so its
    schedules stay paused whatever the declaration says."""
    target = flow_target(automate, root)
    description = automate.description
    if automate.runbook:
        description += f"\n\nRunbook: {automate.runbook}"
    return DeploymentSpec(
        flow_name=target.flow_name,
        name=automate.name,
        entrypoint=automate.flow_entrypoint,
        path=None,  # the run's folder is its worker's checkout (PULL_STEPS)
        work_pool=automate.work_pool or default_pool,
        schedules=tuple(
            sorted(
                (
                    ScheduleSpec.of(
                        prefect_schedule(s.form, s.timezone, automate.jitter_offset(s)),
                        slug=s.slug,
                        active=automate.enabled and not held,
                        parameters=dict(s.parameters),
                    )
                    for s in automate.schedules
                ),
                key=_schedule_key,
            )
        ),
        concurrency_limit=prefect_concurrency_limit(automate),
        tags=automate.tags,
        description=description,
        paused=not automate.enabled,
        parameters=deployment_parameters(automate),
        parameter_schema=closed_schema(target.parameter_schema),
        pull_steps=PULL_STEPS,
        job_variables=job_variables(automate, default_pool),
        triggers=declared_triggers(automate),
    )


def prefect_concurrency_limit(automate: Automate) -> int | None:
    """The deployment's Prefect concurrency limit. Only `allow` has one: under forbid,
    queue_one and replace the guard's slot decides (automates/guard/concurrency.py), and a
    Prefect limit would hold their runs in AwaitingConcurrencySlot before the guard could skip,
    queue or replace them."""
    return automate.concurrency_limit if automate.concurrency is Concurrency.ALLOW else None


def deployment_parameters(automate: Automate) -> dict[str, Any]:
    """The deployment's default parameters. A script's command is not one: it travels in the
    guard's policy, out of reach of whoever starts a run (automates/platform/admission.py)."""
    return dict(automate.parameters)


def closed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The flow's parameter schema, refusing any parameter it does not name: Prefect's server
    then refuses an undeclared parameter on every path that enforces the schema, and the
    workers refuse it on the others."""
    return {**schema, "additionalProperties": False}


def declared_specs(
    registry: Registry, root: Path, default_pool: str, held: frozenset[str] = frozenset()
) -> dict[str, DeploymentSpec]:
    """full name → spec for every deployable automate."""
    specs = (declared_spec(a, root, default_pool, held=a.name in held) for a in registry.deployable)
    return {spec.full_name: spec for spec in specs}


def deployed_spec(
    deployment: Any, flow_name: str, triggers: tuple[TriggerSpec, ...] = ()
) -> DeploymentSpec:
    """The same shape from a Prefect `DeploymentResponse` (and its automations' triggers)."""
    schedules = []
    for item in deployment.schedules:
        schedules.append(
            ScheduleSpec.of(
                item.schedule,
                slug=item.slug,
                active=item.active,
                parameters=dict(item.parameters or {}),
            )
        )
    return DeploymentSpec(
        flow_name=flow_name,
        name=deployment.name,
        entrypoint=deployment.entrypoint,
        path=deployment.path,
        work_pool=deployment.work_pool_name,
        schedules=tuple(sorted(schedules, key=_schedule_key)),
        concurrency_limit=_concurrency_limit(deployment),
        tags=tuple(sorted(deployment.tags)),
        description=deployment.description,
        paused=deployment.paused,
        parameters=dict(deployment.parameters),
        parameter_schema=deployment.parameter_openapi_schema,
        pull_steps=tuple(deployment.pull_steps or ()),
        job_variables=dict(deployment.job_variables or {}),
        triggers=triggers,
    )


def _concurrency_limit(deployment: Any) -> int | None:
    # Prefect 3 backs a deployment's limit with a global concurrency limit; the older
    # `concurrency_limit` attribute is deprecated.
    limit = deployment.global_concurrency_limit
    return None if limit is None else int(limit.limit)


def _schedule_key(schedule: ScheduleSpec) -> tuple[str, str]:
    return (schedule.slug or "", schedule.cron or schedule.rrule or str(schedule.interval_seconds))


def _utc_iso(moment: Any) -> str:
    from datetime import UTC

    return str(moment.astimezone(UTC).isoformat())
