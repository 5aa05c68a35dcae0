"""Triggers beyond time: an automate that starts when a Prefect event happens.

`after: other-automate` starts a run when a run of that automate completes; `event:` names any
Prefect event (e.g. `automates.breaker.opened`), optionally narrowed by `match` on the event's
resource labels. Each trigger becomes one of the deployment's Prefect triggers
(automates/server/triggers.py), so Prefect's own automations service starts the runs. The checks
between declarations (an `after` that names nothing, or loops) are in
automates/registry/trigger_links.py.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from automates.fields import Parameters
from automates.limits import MAX_LIST_ITEMS, MAX_STRING_CHARS

FLOW_RUN_EVENTS = "prefect.flow-run."


class Trigger(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, str_max_length=MAX_STRING_CHARS
    )

    after: str | None = Field(default=None, description="Another automate: a run of it completed.")
    event: str | None = Field(default=None, description="A Prefect event name.")
    match: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_LIST_ITEMS,
        description="Labels the event's resource must carry.",
    )
    parameters: Parameters = Field(
        default_factory=dict, description="Flow parameters of the runs this trigger starts."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Trigger:
        if (self.after is None) == (self.event is None):
            raise ValueError("give exactly one of after or event")
        if self.after is not None and self.match:
            raise ValueError("[match] applies to event triggers only; after names the automate")
        if self.event is not None and not self.event:
            raise ValueError("[event] must name a Prefect event")
        if self.event is not None and self.event.startswith(FLOW_RUN_EVENTS) and not self.match:
            # Prefect refuses such an automation (every flow run would match, its own included).
            raise ValueError(
                f"[match] a {self.event!r} trigger needs match labels to say whose runs; "
                "for 'a run of automate X completed' write after: X"
            )
        return self

    @property
    def label(self) -> str:
        """How the trigger reads in the UI: `after X` or `on EVENT`."""
        return f"after {self.after}" if self.after is not None else f"on {self.event}"
