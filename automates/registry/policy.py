"""The guard policy of one automate: what its declaration asks the guard to enforce at run time,
as its deployment carries it to the worker (job variables)."""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from automates.registry.digest import declaration_digest
from automates.registry.model import Automate, Kind
from automates.scheduling.approval import Approval
from automates.scheduling.concurrency import Concurrency
from automates.scheduling.misfire import Misfire
from automates.scheduling.quiet_hours import QuietHours

GUARD_ENV = "AUTOMATES_GUARD"
# The worker runs this instead of `python -m prefect.engine`; `python` is the worker's (its PATH
# starts with the project's virtual environment).
GUARD_COMMAND = "python -m automates.guard.engine"
JITTER = 0.25
_LEFT_OUT_AT_DEFAULT = (
    "quiet_hours",
    "misfire",
    "misfire_grace_seconds",
    "approval",
    "declaration_digest",
    "concurrency",
    "command",
    "service",
    "once_command",
)


# The policy's fields that are the declaration's own, same name, same default: `of` copies
# them by name, and their defaults are read from the declaration model, so the two cannot
# drift (tests/unit/test_guard_policy.py checks every one).
SAME_AS_DECLARED = (
    "timeout_seconds",
    "retries",
    "retry_backoff_seconds",
    "breaker_threshold",
    "breaker_cooldown_seconds",
    "enabled",
    "environments",
    "env_files",
    "quiet_hours",
    "misfire",
    "misfire_grace_seconds",
    "approval",
    "concurrency",
    "command",
)


def _declared(name: str) -> Any:
    """The declaration model's default for one of its fields."""
    return Automate.model_fields[name].get_default(call_default_factory=True)


class GuardPolicy(BaseModel):
    """Everything the guard needs at run time, derived from the declaration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    automate: str
    timeout_seconds: int = _declared("timeout_seconds")
    retries: int = _declared("retries")
    retry_backoff_seconds: float = _declared("retry_backoff_seconds")
    soft_fail: bool
    breaker_threshold: int = _declared("breaker_threshold")
    breaker_cooldown_seconds: int = _declared("breaker_cooldown_seconds")
    enabled: bool = _declared("enabled")
    advisory_lock: bool = False  # the declaration `touches` money or durable data
    environments: tuple[str, ...] = _declared("environments")
    env_files: tuple[str, ...] = _declared("env_files")
    quiet_hours: QuietHours | None = _declared("quiet_hours")  # guard/quiet_hours.py
    misfire: Misfire = _declared("misfire")  # guard/misfire.py
    misfire_grace_seconds: int = _declared("misfire_grace_seconds")
    approval: Approval = _declared("approval")  # guard/approval.py
    # The version an approval is for (automates/registry/digest.py); only with an approval.
    declaration_digest: str | None = None
    concurrency: Concurrency = _declared("concurrency")  # guard/concurrency.py
    # A script automate's command (automates/guard/script.py): part of the policy, not a run
    # parameter, so no trigger can replace what the run executes.
    command: tuple[str, ...] | None = _declared("command")
    # A service (automates/guard/service.py): `command` is its loop, run with no timeout and
    # restarted when it exits; `once_command` its one-shot mode, run under the timeout.
    service: bool = False
    once_command: tuple[str, ...] | None = None

    @classmethod
    def of(cls, automate: Automate, default_pool: str | None = None) -> GuardPolicy:
        return cls(
            **{name: getattr(automate, name) for name in SAME_AS_DECLARED},
            automate=automate.name,
            soft_fail=automate.soft_fails,
            advisory_lock=bool(automate.touches),
            declaration_digest=_approved_version(automate, default_pool),
            service=automate.kind is Kind.SERVICE,
            once_command=automate.once,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> GuardPolicy | None:
        raw = env.get(GUARD_ENV)
        return None if raw is None else cls.model_validate_json(raw)

    def encoded(self) -> str:
        # The scheduling policies are left out at their defaults, so deployments that use
        # none of them keep their job variables byte for byte.
        defaults = {
            name
            for name in _LEFT_OUT_AT_DEFAULT
            if getattr(self, name) == type(self).model_fields[name].default
        }
        data = self.model_dump(mode="json", exclude=defaults)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def retry_delay(self, retry: int, seed: str) -> float:
        """Delay before retry number `retry` (1-based): doubling, with up to 25% jitter.

        The jitter is drawn from `seed` (the flow run), so two automates failing together do
        not retry in lockstep, and one run's delays are reproducible from its journal.
        """
        digest = hashlib.sha256(f"{seed}:{retry}".encode()).digest()
        jitter = random.Random(digest).uniform(0, JITTER)
        return self.retry_backoff_seconds * 2 ** (retry - 1) * (1 + jitter)


def job_variables(automate: Automate, default_pool: str | None = None) -> dict[str, Any]:
    """The deployment's job variables that route its runs through the guard."""
    policy = GuardPolicy.of(automate, default_pool)
    return {"command": GUARD_COMMAND, "env": {GUARD_ENV: policy.encoded()}}


def _approved_version(automate: Automate, default_pool: str | None) -> str | None:
    """The digest sync stores for the declaration, for an automate that asks for approval."""
    if automate.approval is Approval.NONE:
        return None
    pool = automate.work_pool or default_pool
    if pool is None:
        raise ValueError(f"{automate.name}: the approval's digest needs the default work pool")
    return declaration_digest(automate, pool)
