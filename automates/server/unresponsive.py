"""Runs whose process died are marked Crashed by Prefect itself: heartbeats and one automation.

While a run's body runs, the run's own process sends an `automates.flow-run.heartbeat` event
every `AUTOMATES_RUN_HEARTBEAT_SECONDS` (30 s; automates/guard/heartbeats.py), and when the body
is over, one `automates.flow-run.heartbeats-ended` event that *follows* the last beat. A run
whose worker or process was killed (`kill -9` of its process group, a host that vanished)
stops beating but stays Running for ever. Prefect's documented answer for a self-hosted server
("detect zombie flows") is a proactive automation: after a heartbeat, expect another heartbeat
or a final state within a window, else set the run Crashed. Any other event of the run closes
the window too: a run Suspended for approval or Scheduled again has no process, rightly.
`ensure` writes that automation at every sync (and updates one an older version wrote); the
`run-watch` automate then journals the crashed run (automates/guard/settle.py).

Why the layer's own beats and not Prefect's `prefect.flow-run.heartbeat` (which still open no
window, and only close one): Prefect's server evaluates events two at a time, so a run's final
state could be evaluated before (or alongside) its last heartbeat; the final state then found
no window to close, the heartbeat opened one, and the automation fired 90 s later at a run
long Completed, for nearly every short run (measured: every run of an every-minute bench; the
failed action cost ~15 % of the server's CPU at 50 runs a minute). The end-of-beats event names
the last beat as the one it follows, and Prefect's causal ordering evaluates it only after that
beat: the window it closes always exists (docs/decisions/0057-runs-send-their-own-heartbeats.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from prefect.client.orchestration import PrefectClient

from automates.registry.model import MANAGED_TAG

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore

AUTOMATION_NAME = "automates: crash unresponsive runs"
HEARTBEAT_EVENT = "automates.flow-run.heartbeat"
HEARTBEATS_ENDED_EVENT = "automates.flow-run.heartbeats-ended"
# A run is unresponsive after this many missed beats.
MISSED_BEATS = 3


def unresponsive_after(heartbeat_seconds: int) -> int:
    """Seconds without a beat after which a Running run is taken for dead."""
    return MISSED_BEATS * heartbeat_seconds


def automation(heartbeat_seconds: int) -> AutomationCore:
    """The automation for runs beating every `heartbeat_seconds`, as Prefect's client schema
    (`AutomationCore`)."""
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
            after={HEARTBEAT_EVENT},
            # Another beat, the end of the beats, or any event of the run: a final state, and
            # also a state whose process rightly ends without one (Suspended while it waits
            # for approval, Scheduled again for a deferral or a retry), not a death.
            expect={"automates.flow-run.*", "prefect.flow-run.*"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=unresponsive_after(heartbeat_seconds)),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                name="Crashed",
                message=f"no heartbeat for {unresponsive_after(heartbeat_seconds)} s: the run's "
                "process or its worker died (marked Crashed by the automation "
                f"'{AUTOMATION_NAME}')",
                force=False,
            )
        ],
    )


async def ensure(client: PrefectClient, heartbeat_seconds: int) -> bool:
    """Create the automation, or bring one of that name written by an older version (or for
    another heartbeat interval) up to date (its trigger, its action); whether it was created."""
    wanted = automation(heartbeat_seconds)
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
