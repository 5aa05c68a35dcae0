"""What one agent may see and change.

An agent changes only the routines it owns. It reads its own routines, the routines of the
agents the operator granted it (AUTOMATES_AGENT_READ_GRANTS), and the operator's automates that
list it in `agents` — those read-only: an agent can never touch an operator's declaration.
"""

from __future__ import annotations

from dataclasses import dataclass

from automates.errors import RoutineError
from automates.registry.model import Automate
from automates.settings import Settings


@dataclass(frozen=True)
class AgentScope:
    """The agent on the other end of a tool session, and what the operator granted it."""

    agent: str
    readable_agents: frozenset[str]  # its own name included

    @classmethod
    def of(cls, agent: str, settings: Settings) -> AgentScope:
        granted = settings.agent.read_grants.get(agent, ())
        return cls(agent=agent, readable_agents=frozenset({agent, *granted}))

    def owns(self, automate: Automate) -> bool:
        return automate.origin == "agent" and automate.agents == (self.agent,)

    def may_read(self, automate: Automate) -> bool:
        if automate.origin == "agent":
            return bool(set(automate.agents) & self.readable_agents)
        return self.agent in automate.agents

    def readable(self, automate: Automate | None, name: str) -> Automate:
        """The automate, if this agent may read it; else the same refusal as for a name that
        does not exist (an agent learns nothing of what it may not see)."""
        if automate is None or not self.may_read(automate):
            raise RoutineError(f"no routine named {name!r} is visible to agent {self.agent!r}")
        return automate

    def changeable(self, automate: Automate | None, name: str) -> Automate:
        """The automate, if this agent owns it; an operator's automate or another agent's
        routine it may read is refused naming why; one it may not read, as unknown."""
        found = self.readable(automate, name)
        if not self.owns(found):
            whose = (
                f"a routine of agent {found.agents[0]!r}"
                if found.origin == "agent"
                else "declared by the operator (deployments/registry.yaml)"
            )
            raise RoutineError(
                f"{name!r} is {whose}: agent {self.agent!r} may read it but never change it"
            )
        return found
