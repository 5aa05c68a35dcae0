"""The pre-check protocol, and the first pre-check: the environment guard.

A pre-check answers one question before a run's body: None lets the run go on; a state ends
it (e.g. Completed named "Skipped", with the reason). The runner asks them in one visible
order (automates/guard/runner.py: PRECHECKS); each lives in the module named after it.
"""

from __future__ import annotations

from typing import Protocol

from prefect.client.schemas.objects import State
from prefect.states import Completed

from automates.guard.context import RunContext


class PreCheck(Protocol):
    """One question asked of a run before its body."""

    name: str

    def check(self, run: RunContext) -> State | None:
        """None to let the run go on, or the state that ends it."""
        ...


class EnvironmentCheck:
    """An automate declared for some environments (`environments:`) runs only in those."""

    name = "environment"

    def check(self, run: RunContext) -> State | None:
        allowed = run.policy.environments
        if not allowed or run.settings.environment in allowed:
            return None
        return Completed(
            name="Skipped",
            message=f"skipped: runs only in {', '.join(allowed)}; "
            f"this is {run.settings.environment!r}",
        )
