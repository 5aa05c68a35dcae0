"""An automate's event triggers as its deployment's Prefect triggers (automations).

Each declared trigger (automates/scheduling/triggers.py) becomes one Prefect automation built
the way `prefect deploy` builds a deployment's triggers: a `DeploymentEventTrigger` whose
action runs this deployment, owned by the deployment. Prefect's triggers service then starts
the runs; nothing of ours watches events. Sync writes them, and reads them back into a
`TriggerSpec` so that "no change" is a plain equality and reconcile names any drift.

`after: X` listens for `prefect.flow-run.Completed` of a run whose deployment is named X and
carries the tag `managed-by:automates`: deployments are named after their automate, so the
name keeps matching if X's deployment is re-created. Only a run ending in the plain Completed
state counts: Skipped, Deferred (nothing ran) and Findings (a soft-fail's findings) do not.

A service automate has one more, its "keep running" trigger (`keep_running`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import Automation, AutomationCore, EventTrigger
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from pydantic import BaseModel, ConfigDict

from automates.registry.model import MANAGED_TAG, Automate, Kind
from automates.scheduling.triggers import Trigger

COMPLETED = "prefect.flow-run.Completed"
CRASHED = "prefect.flow-run.Crashed"
FAILED = "prefect.flow-run.Failed"
PAGE = 200  # the server's maximum page size
DESCRIPTION = "From deployments/registry.yaml (automates sync); edits here are undone by sync."


class TriggerSpec(BaseModel):
    """One deployment trigger in a comparable shape: what the registry asks, or what the
    server holds."""

    model_config = ConfigDict(frozen=True)

    name: str
    enabled: bool
    expect: tuple[str, ...]
    match: dict[str, Any]
    match_related: tuple[dict[str, Any], ...]
    posture: str = "Reactive"
    threshold: int = 1
    within_seconds: float = 0.0
    parameters: dict[str, Any] | None = None  # None: the deployment's own parameters


def declared_triggers(automate: Automate) -> tuple[TriggerSpec, ...]:
    """The deployment triggers an automate's declaration asks for (in name order, as read
    back). They are enabled as the automate is: a disabled automate's triggers stay off."""
    specs = [_declared(automate, index, trigger) for index, trigger in enumerate(automate.triggers)]
    if automate.kind is Kind.SERVICE:
        specs.append(keep_running(automate))
    return ordered(specs)


def keep_running(service: Automate) -> TriggerSpec:
    """A service's net: when one of its runs ends Crashed or Failed (its process died, its
    host vanished and Prefect's heartbeat automation crashed it), run the deployment again
    with its defaults, i.e. a loop run. That run waits its restart delay and counts the
    failure towards the crash loop (automates/guard/service.py); a cancelled run (disabled,
    stopped, crash loop) and a skipped one are not restarted."""
    return TriggerSpec(
        name=f"{service.name}: keep the service running",
        enabled=service.enabled,
        expect=(CRASHED, FAILED),
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=(
            {"prefect.resource.role": "deployment", "prefect.resource.name": service.name},
            {"prefect.resource.id": f"prefect.tag.{MANAGED_TAG}"},
        ),
    )


def _declared(automate: Automate, index: int, trigger: Trigger) -> TriggerSpec:
    if trigger.after is not None:
        match: dict[str, Any] = {"prefect.resource.id": "prefect.flow-run.*"}
        related: tuple[dict[str, Any], ...] = (
            {"prefect.resource.role": "deployment", "prefect.resource.name": trigger.after},
            {"prefect.resource.id": f"prefect.tag.{MANAGED_TAG}"},
        )
        expect: tuple[str, ...] = (COMPLETED,)
    else:
        assert trigger.event is not None
        match, related, expect = dict(trigger.match), (), (trigger.event,)
    return TriggerSpec(
        name=f"{automate.name}: {trigger.label} (trigger {index})",
        enabled=automate.enabled,
        expect=expect,
        match=match,
        match_related=related,
        parameters=dict(trigger.parameters) or None,
    )


def deployed_triggers(automations: Iterable[Automation]) -> dict[UUID, tuple[TriggerSpec, ...]]:
    """deployment id → the triggers this tool made for it (tagged `managed-by:automates`), in
    name order as sync writes them. Automations an operator made by hand are not ours."""
    found: dict[UUID, list[TriggerSpec]] = {}
    for automation in automations:
        deployment_id = _target(automation)
        if deployment_id is None or MANAGED_TAG not in automation.tags:
            continue
        found.setdefault(deployment_id, []).append(_deployed(automation))
    return {key: tuple(sorted(specs, key=_order)) for key, specs in found.items()}


async def read_deployed_triggers(client: PrefectClient) -> dict[UUID, tuple[TriggerSpec, ...]]:
    """Every deployment's triggers, from one paged read of the server's automations."""
    automations: list[Automation] = []
    while True:
        page = await client.read_automations(limit=PAGE, offset=len(automations))
        automations.extend(page)
        if len(page) < PAGE:
            return deployed_triggers(automations)


def ordered(specs: Sequence[TriggerSpec]) -> tuple[TriggerSpec, ...]:
    return tuple(sorted(specs, key=_order))


async def write_triggers(
    client: PrefectClient, deployment_id: UUID, triggers: Sequence[TriggerSpec]
) -> None:
    """Replace the deployment's triggers made by this tool with `triggers`."""
    for automation in await client.read_resource_related_automations(
        f"prefect.deployment.{deployment_id}"
    ):
        if MANAGED_TAG in automation.tags and _target(automation) == deployment_id:
            await client.delete_automation(automation.id)
    for spec in triggers:
        await client.create_automation(as_automation(spec, deployment_id))


def as_automation(spec: TriggerSpec, deployment_id: UUID) -> AutomationCore:
    """The Prefect automation of one trigger, as `prefect deploy` builds a deployment's."""
    trigger = DeploymentEventTrigger(
        name=spec.name,
        description=DESCRIPTION,
        enabled=spec.enabled,
        expect=set(spec.expect),
        match=spec.match,
        match_related=[dict(r) for r in spec.match_related],
        posture=spec.posture,  # type: ignore[arg-type]
        threshold=spec.threshold,
        within=timedelta(seconds=spec.within_seconds),
        parameters=spec.parameters,
    )
    trigger.set_deployment_id(deployment_id)
    automation = trigger.as_automation()
    return automation.model_copy(update={"tags": [MANAGED_TAG]})


def _deployed(automation: Automation) -> TriggerSpec:
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger)
    related = trigger.match_related
    related_list = related if isinstance(related, list) else [related]
    action = automation.actions[0]
    assert isinstance(action, RunDeployment)
    return TriggerSpec(
        name=automation.name,
        enabled=automation.enabled,
        expect=tuple(sorted(trigger.expect)),
        match=_labels(trigger.match),
        match_related=tuple(labels for r in related_list if (labels := _labels(r))),
        posture=str(getattr(trigger.posture, "value", trigger.posture)),
        threshold=trigger.threshold,
        within_seconds=trigger.within.total_seconds(),
        parameters=action.parameters or None,
    )


def _target(automation: Automation) -> UUID | None:
    """The deployment the automation runs, if it is one trigger running one deployment."""
    if not isinstance(automation.trigger, EventTrigger) or len(automation.actions) != 1:
        return None
    action = automation.actions[0]
    if isinstance(action, RunDeployment) and action.source == "selected":
        return action.deployment_id
    return None


def _labels(specification: Any) -> dict[str, Any]:
    return dict(getattr(specification, "root", specification) or {})


def _order(spec: TriggerSpec) -> str:
    return spec.name
