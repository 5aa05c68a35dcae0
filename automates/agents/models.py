"""Model resolution, shared by the LLM CLI block and the LLM facade."""

from __future__ import annotations

from collections.abc import Mapping


def resolve_model(
    *, default: str, agent_models: Mapping[str, str], agent: str | None, override: str | None
) -> str:
    """The run's override, else the agent's preference, else the default."""
    if override:
        return override
    if agent is not None and agent_models.get(agent):
        return agent_models[agent]
    return default
