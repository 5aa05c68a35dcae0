"""Saving every block document the agents need, for `automates sync` / `up` to call once."""

from __future__ import annotations

import asyncio

from automates.agents.llm_cli import asave_default_llm_cli
from automates.agents.templates import asave_builtin_templates
from automates.settings import Settings


async def asave_agent_blocks(
    overwrite: bool = False, settings: Settings | None = None
) -> list[str]:
    """Save the built-in templates and the default LLM CLI block; the names written."""
    written = await asave_builtin_templates(overwrite)
    settings = settings or Settings()
    if await asave_default_llm_cli(overwrite, settings):
        written.append(settings.llm.cli_block)
    return written


def save_agent_blocks(overwrite: bool = False, settings: Settings | None = None) -> list[str]:
    return asyncio.run(asave_agent_blocks(overwrite, settings))
