"""An agent's heartbeat: a periodic check-in with a checklist (seed 002), configured by the
operator (`automates heartbeat enable AGENT ...`), and the declaration it becomes.

A heartbeat is an automate like any other — deployed by sync, under the guard, listed, held by
its breaker — whose flow (flows/agent_heartbeat.py) runs one agent task run with the heartbeat
template, after the checks of automates/scheduling/agent_heartbeat.py. Its findings are run
outcomes (`Findings`), delivered through the alert routes like any automate's, where identical
ones are de-duplicated (a route's `dedupe_window_seconds`, 24 h by default).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from automates.fields import FieldError, Frozen
from automates.registry.delivery import Delivery, DeliveryMode
from automates.registry.fields import CheckoutPath, Slug
from automates.registry.model import Automate, Kind
from automates.scheduling.agent_heartbeat import ActiveHours
from automates.scheduling.forms import every_form

HEARTBEAT_FLOW = "flows/agent_heartbeat.py:agent_heartbeat"
HEARTBEAT_FAMILY = "heartbeats"
DEFAULT_EVERY = "30m"
MIN_EVERY_SECONDS = 60
MAX_CHECKLIST_CHARS = 20_000
# A heartbeat's run: the CLI's own bound (the template's turns) well inside it.
TIMEOUT_SECONDS = 600


def heartbeat_name(agent: str) -> str:
    """The automate (and deployment) of an agent's heartbeat."""
    return f"heartbeat-{agent}"


class Heartbeat(Frozen):
    """One agent's heartbeat, as the operator configured it."""

    agent: Slug
    enabled: bool = True
    every: str = Field(default=DEFAULT_EVERY, description="How often: '30m', '1h', '2h30m'.")
    checklist: str | None = Field(
        default=None, max_length=MAX_CHECKLIST_CHARS, description="The checklist, inline."
    )
    checklist_file: CheckoutPath | None = Field(
        default=None, description="Or a HEARTBEAT.md-style file, relative to the project root."
    )
    active_hours: ActiveHours | None = Field(
        default=None, description="The daily window it runs in; outside it, runs are skipped."
    )
    template: Slug = Field(default="heartbeat", description="The permission template.")
    perimeter: Slug = Field(default="platform", description="Where its task run works.")

    @model_validator(mode="after")
    def _coherent(self) -> Heartbeat:
        if (self.checklist is None) == (self.checklist_file is None):
            raise FieldError("checklist", "give exactly one of checklist or checklist_file")
        try:
            seconds = every_form(self.every).every_seconds or 0
        except ValueError as error:
            raise FieldError("every", str(error)) from None
        if seconds < MIN_EVERY_SECONDS:
            raise FieldError(
                "every", f"{self.every!r} is under a minute; a heartbeat is a check-in"
            )
        return self

    @property
    def name(self) -> str:
        return heartbeat_name(self.agent)

    def declaration(self, *, pool: str) -> Automate:
        """The automate this heartbeat is: its flow on the agents' pool, every `every`."""
        fields: dict[str, Any] = {
            "name": self.name,
            "kind": Kind.RECURRING,
            "caste": "agents",
            "family": HEARTBEAT_FAMILY,
            "agents": (self.agent,),
            "description": f"The heartbeat of agent {self.agent}: its checklist, every "
            f"{self.every}; silent when the agent answers HEARTBEAT_OK, a finding otherwise.",
            "entrypoint": HEARTBEAT_FLOW,
            "work_pool": pool,
            "parameters": {"agent": self.agent},
            "schedules": ({"slug": "heartbeat", "every": self.every},),
            "timeout_seconds": TIMEOUT_SECONDS,
            "enabled": self.enabled,
            # Findings and failures reach the routes; an acknowledgement (Completed) does not.
            "delivery": Delivery(mode=DeliveryMode.FAILURE_ONLY),
            "breaker_threshold": 1000,  # a failing check-in is the agent's problem to report
        }
        return Automate.model_validate(fields)
