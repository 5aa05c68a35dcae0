"""An agent's routine: what an agent may ask for through the layer's MCP tools, and the
declaration it becomes.

An agent does not write registry YAML. It gives a `RoutineSpec` — a name, one schedule in any
form the registry accepts, a prompt (or, where the operator allows it, a flow), quiet hours and
delivery — and the layer derives the rest: an `origin: agent` automate owned by that agent,
tagged `origin:agent` and `agent:NAME`, under the same guard as any declaration. What an agent
must never choose is not a field here: a command (no routine runs a shell command), the work
pool, the agent a run is billed to, retries, breakers, concurrency, triggers or the webhook.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from automates.fields import FieldError, Frozen
from automates.registry.delivery import Delivery
from automates.registry.fields import Slug
from automates.registry.model import MAX_TIMEOUT_SECONDS, Automate, Kind
from automates.registry.schedule import Schedule
from automates.scheduling.approval import Approval
from automates.scheduling.quiet_hours import QuietHours

# The flow a prompt routine runs: one agent task run per fire (flows/agent_task_run.py).
PROMPT_FLOW = "flows/agent_task_run.py:agent_task_run"
ROUTINE_CASTE = "agents"
ROUTINE_FAMILY = "routines"
MAX_PROMPT_CHARS = 20_000
MAX_DESCRIPTION_CHARS = 500


class RoutineSpec(Frozen):
    """One routine as an agent asks for it (every field bounded: it comes from a model)."""

    name: Slug = Field(description="The routine's name, unique across the layer.")
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)
    schedule: Schedule = Field(
        description="When it fires: exactly one of cron, every, at or when, with a timezone."
    )
    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="What the agent is asked at each fire (an agent task run).",
    )
    entrypoint: str | None = Field(
        default=None,
        max_length=200,
        description="Instead of a prompt: a flow 'path/file.py:function' the operator allows "
        "routines to run (AUTOMATES_AGENT_ROUTINE_ENTRYPOINTS).",
    )
    template: Slug = Field(
        default="research",
        description="The permission template of a prompt routine's task runs.",
    )
    perimeter: Slug = Field(
        default="platform", description="The perimeter a prompt routine's task runs work in."
    )
    timeout_seconds: int = Field(default=600, ge=1, le=MAX_TIMEOUT_SECONDS)
    quiet_hours: QuietHours | None = None
    delivery: Delivery | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _one_body(self) -> RoutineSpec:
        if (self.prompt is None) == (self.entrypoint is None):
            raise FieldError("prompt", "give exactly one of prompt or entrypoint")
        if self.schedule.parameters:
            # A schedule's parameters reach the flow: they could name another agent.
            raise FieldError("schedule.parameters", "a routine's schedule takes no parameters")
        return self

    def declaration(self, agent: str, *, pool: str, trusted: bool) -> Automate:
        """The automate this routine is, owned by `agent`; `pool` runs prompt routines (the
        agents' pool); an untrusted agent's routine waits for approval before it is enabled."""
        fields: dict[str, Any] = {
            "name": self.name,
            "kind": Kind.RECURRING,
            "caste": ROUTINE_CASTE,
            "family": ROUTINE_FAMILY,
            "agents": (agent,),
            "description": self.description,
            "schedules": (self.schedule,),
            "timeout_seconds": self.timeout_seconds,
            "quiet_hours": self.quiet_hours,
            "delivery": self.delivery,
            "enabled": self.enabled,
            "origin": "agent",
            "approval": Approval.NONE if trusted else Approval.BEFORE_ENABLE,
        }
        if self.prompt is not None:
            fields["entrypoint"] = PROMPT_FLOW
            fields["work_pool"] = pool
            fields["parameters"] = {
                "codename": self.name,
                "agent": agent,
                "prompt": self.prompt,
                "template": self.template,
                "perimeter": self.perimeter,
                "timeout_seconds": self.timeout_seconds,
            }
        else:
            fields["entrypoint"] = self.entrypoint
        return Automate.model_validate(fields)
