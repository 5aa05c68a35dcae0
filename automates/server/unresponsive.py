"""Runs whose process died are marked Crashed by Prefect itself: heartbeats and one automation.

Prefect's flow engine sends a `prefect.flow-run.heartbeat` event every
`PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds while a run is Running (the layer sets
`HEARTBEAT_SECONDS` for every process it starts). A run whose worker or process was killed
(`kill -9` of its process group, a host that vanished) stops beating but stays Running for
ever. Prefect's documented answer for a self-hosted server ("detect zombie flows") is a
proactive automation: after a heartbeat, expect another heartbeat or a final state within a
window, else set the run Crashed. Any other event of the run closes the window too: a run
Suspended for approval or Scheduled again has no process, rightly. `ensure` writes that
automation at every sync (and updates one an older version wrote); the `run-watch` automate
then journals the crashed run (automates/guard/settle.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from prefect.client.orchestration import PrefectClient

from automates.registry.model import MANAGED_TAG

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore

AUTOMATION_NAME = "automates: crash unresponsive runs"
# Prefect's minimum heartbeat interval is 30 s; a run is unresponsive after three missed beats.
HEARTBEAT_SECONDS = 30
UNRESPONSIVE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS
CRASHED_MESSAGE = (
    f"no heartbeat for {UNRESPONSIVE_AFTER_SECONDS} s: the run's process or its worker died "
    "(marked Crashed by the automation 'automates: crash unresponsive runs')"
)


def automation() -> AutomationCore:
    """The automation, as Prefect's client schema (`AutomationCore`)."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=AUTOMATION_NAME,
        description="Marks Crashed a flow run that stopped sending heartbeats (its process or "
        "worker died), so no run stays Running unseen. Written by `automates sync`.",
        tags=[MANAGED_TAG],
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            # Another beat, or any event of the run: a final state, and also a state whose
            # process rightly ends without one (Suspended while it waits for approval,
            # Scheduled again for a deferral or a retry), which must not read as a death.
            expect={"prefect.flow-run.*"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=UNRESPONSIVE_AFTER_SECONDS),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED, name="Crashed", message=CRASHED_MESSAGE, force=False
            )
        ],
    )


async def ensure(client: PrefectClient) -> bool:
    """Create the automation, or bring one of that name written by an older version up to
    date (its trigger, its action); whether it was created."""
    wanted = automation()
    found = await client.read_automations_by_name(AUTOMATION_NAME)
    if not found:
        await client.create_automation(wanted)
        return True
    for existing in found:
        if _shape(existing) != _shape(wanted):
            await client.update_automation(existing.id, wanted)
    return False


def _shape(automation: AutomationCore) -> object:
    """What makes two versions of the automation behave alike (not their ids)."""
    trigger = automation.trigger.model_dump(mode="json", exclude={"id"})
    actions = [a.model_dump(mode="json") for a in automation.actions]
    return trigger, actions
