"""The guard policy of one automate, as its deployment carries it to the worker."""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from automates.registry.model import Automate
from automates.scheduling.quiet_hours import QuietHours

GUARD_ENV = "AUTOMATES_GUARD"
# The worker runs this instead of `python -m prefect.engine`; `python` is the worker's (its PATH
# starts with the project's virtual environment).
GUARD_COMMAND = "python -m automates.guard.engine"
JITTER = 0.25


class GuardPolicy(BaseModel):
    """Everything the guard needs at run time, derived from the declaration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    automate: str
    timeout_seconds: int
    retries: int
    retry_backoff_seconds: float
    soft_fail: bool
    breaker_threshold: int = 10
    breaker_cooldown_seconds: int = 3600
    enabled: bool = True
    advisory_lock: bool = False
    environments: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    quiet_hours: QuietHours | None = None  # checked by automates.guard.quiet_hours

    @classmethod
    def of(cls, automate: Automate) -> GuardPolicy:
        return cls(
            automate=automate.name,
            timeout_seconds=automate.timeout_seconds,
            retries=automate.retries,
            retry_backoff_seconds=automate.retry_backoff_seconds,
            soft_fail=automate.soft_fails,
            breaker_threshold=automate.breaker_threshold,
            breaker_cooldown_seconds=automate.breaker_cooldown_seconds,
            enabled=automate.enabled,
            advisory_lock=bool(automate.touches),
            environments=automate.environments,
            env_files=automate.env_files,
            quiet_hours=automate.quiet_hours,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> GuardPolicy | None:
        raw = env.get(GUARD_ENV)
        return None if raw is None else cls.model_validate_json(raw)

    def encoded(self) -> str:
        # Without quiet hours the key is left out, so existing deployments keep their job
        # variables byte for byte.
        data = self.model_dump(
            mode="json", exclude={"quiet_hours"} if not self.quiet_hours else None
        )
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def retry_delay(self, retry: int, seed: str) -> float:
        """Delay before retry number `retry` (1-based): doubling, with up to 25% jitter.

        The jitter is drawn from `seed` (the flow run), so two automates failing together do
        not retry in lockstep, and one run's delays are reproducible from its journal.
        """
        digest = hashlib.sha256(f"{seed}:{retry}".encode()).digest()
        jitter = random.Random(digest).uniform(0, JITTER)
        return self.retry_backoff_seconds * 2 ** (retry - 1) * (1 + jitter)


def job_variables(automate: Automate) -> dict[str, Any]:
    """The deployment's job variables that route its runs through the guard."""
    return {"command": GUARD_COMMAND, "env": {GUARD_ENV: GuardPolicy.of(automate).encoded()}}
