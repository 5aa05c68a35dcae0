"""Frozen, validated models of the declarations.

A declaration that cannot run as declared fails here, where it is written, naming the field:
an unknown key, a cron expression croniter refuses, a timezone tzdata does not know, a recurring
automate without a schedule.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from automates.fields import FieldError, Frozen, Parameters
from automates.limits import MAX_COMMAND_ITEMS, MAX_LIST_ITEMS
from automates.registry.alert_kinds import ROUTABLE
from automates.registry.delivery import Delivery
from automates.registry.fields import CheckoutPath, Slug
from automates.registry.schedule import Schedule
from automates.scheduling.approval import Approval
from automates.scheduling.concurrency import Concurrency
from automates.scheduling.jitter import MAX_JITTER_SECONDS, jitter_bound, stable_offset
from automates.scheduling.misfire import DEFAULT_GRACE_SECONDS, Misfire
from automates.scheduling.quiet_hours import QuietHours
from automates.scheduling.triggers import Trigger

ENTRYPOINT = re.compile(r"^[\w./-]+\.py(:[A-Za-z_]\w*)?$")
MAX_TIMEOUT_SECONDS = 1800


class Kind(StrEnum):
    """Technical nature of an automate (seed 000: kind)."""

    RECURRING = "recurring"  # scheduled
    ONESHOT = "oneshot"  # run on demand
    TOOL = "tool"  # invoked by an agent or a skill
    LIB = "lib"  # shared library: importable, never run, no deployment
    META = "meta"  # tooling about the layer itself
    SERVICE = "service"  # a long-running loop, kept running while enabled

    @property
    def deployable(self) -> bool:
        return self is not Kind.LIB


class Automate(Frozen):
    """One declared automate."""

    name: Slug
    kind: Kind
    caste: Slug = Field(description="Owning agent group, e.g. vigies, horlogers.")
    family: Slug = Field(description="Functional family, e.g. audits, backups.")
    agents: tuple[Slug, ...] = Field(
        default=(), max_length=MAX_LIST_ITEMS, description="Owning agents."
    )
    description: str = Field(min_length=1)
    runbook: CheckoutPath | None = Field(
        default=None, description="Path of the runbook, relative to the project root."
    )
    entrypoint: str | None = Field(
        default=None,
        description="'path/to/file.py:flow_function' (a lib: 'path/to/file.py'). "
        "A script automate gives `command` instead.",
    )
    command: tuple[str, ...] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_COMMAND_ITEMS,
        description="A script automate: the executable (relative to the project root, or on "
        "PATH) and its arguments, run as a subprocess under the guard. No shell is involved.",
    )
    once: tuple[str, ...] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_COMMAND_ITEMS,
        description="A service's one-shot catch-up mode: the command `automates trigger NAME "
        "--once` runs once, under the guard and its timeout.",
    )
    schedules: tuple[Schedule, ...] = Field(default=(), max_length=MAX_LIST_ITEMS)
    timeout_seconds: int = Field(default=300, ge=1, le=MAX_TIMEOUT_SECONDS)
    concurrency_limit: int | None = Field(
        default=1,
        ge=1,
        description="Runs at once: 1 (the default) under forbid, queue_one and replace; under "
        "allow, 2 or more, or null for no limit.",
    )
    work_pool: Slug | None = Field(default=None, description="Default: the settings' work pool.")
    enabled: bool = True
    parameters: Parameters = Field(default_factory=dict)
    retries: int = Field(default=0, ge=0, le=10, description="Retries after a failure.")
    retry_backoff_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="First retry delay; it doubles at each retry, with up to 25% jitter. "
        "A service: the first restart delay after its command exits.",
    )
    soft_fail: bool | None = Field(
        default=None,
        description="A failure (non-zero exit) means findings, not a crash. "
        "Default: true for the audits family.",
    )
    breaker_threshold: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Consecutive failures that open the circuit breaker (schedules paused).",
    )
    breaker_cooldown_seconds: int = Field(
        default=3600,
        ge=1,
        le=7 * 24 * 3600,
        description="How long an open breaker waits before one probe run (half-open).",
    )
    touches: tuple[Literal["money", "durable-data"], ...] = Field(
        default=(),
        max_length=MAX_LIST_ITEMS,
        description="What a run changes that must never be changed twice at once: such an "
        "automate also takes a PostgreSQL advisory lock, as a second layer under Prefect's "
        "concurrency limit.",
    )
    environments: tuple[Slug, ...] = Field(
        default=(),
        max_length=MAX_LIST_ITEMS,
        description="Run only where AUTOMATES_ENVIRONMENT is one of these; elsewhere the run is "
        "recorded as skipped. Empty: everywhere.",
    )
    env_files: tuple[CheckoutPath, ...] = Field(
        default=(),
        max_length=MAX_LIST_ITEMS,
        description="Env files (relative to the project root) loaded before each run, never "
        "overwriting variables already set.",
    )
    jitter_seconds: int = Field(
        default=0,
        ge=0,
        le=MAX_JITTER_SECONDS,
        description="Up to this many seconds of stable offset on every schedule (a hash of "
        "the name and the schedule's slug), seen as the runs' scheduled time.",
    )
    quiet_hours: QuietHours | None = Field(
        default=None, description="A daily window in which the automate does not fire."
    )
    origin: Literal["operator", "agent"] = Field(
        default="operator",
        description="Who declared it; an agent's schedules may not fire more often than "
        "AUTOMATES_AGENT_MIN_INTERVAL_SECONDS.",
    )
    misfire: Misfire = Field(
        default=Misfire.SKIP,
        description="What happens to ticks missed while the server or workers were down: "
        "skip, catch_up (at most 3; hold if more and over 24 h old) or fire_once.",
    )
    misfire_grace_seconds: int = Field(
        default=DEFAULT_GRACE_SECONDS,
        ge=1,
        le=24 * 3600,
        description="A run starting this late after its tick or less is on time, not missed.",
    )
    concurrency: Concurrency = Field(
        default=Concurrency.FORBID,
        description="A new run while one is active: forbid (skipped), queue_one, replace or "
        "allow (up to concurrency_limit).",
    )
    approval: Approval = Field(
        default=Approval.NONE,
        description="none, before_enable (schedules inactive until approved) or "
        "before_first_run (the first run after a change waits for approval).",
    )
    triggers: tuple[Trigger, ...] = Field(
        default=(),
        max_length=MAX_LIST_ITEMS,
        description="Prefect events that start a run, besides the schedules.",
    )
    webhook: bool = Field(
        default=False,
        description="Whether the authenticated webhook may start this automate.",
    )
    delivery: Delivery | None = Field(
        default=None,
        description="How this automate's run outcomes are delivered (mode, routes); default: "
        "the routes file's `delivery`.",
    )
    alerts: dict[str, tuple[Slug, ...]] = Field(
        default_factory=dict,
        max_length=MAX_LIST_ITEMS,
        description="Alert kind → routes, for this automate's alerts (breaker_opened, held, "
        "missed_tick, ...); kinds not listed follow the routes file's `alerts`.",
    )

    @model_validator(mode="after")
    def _coherent(self) -> Automate:
        if self.kind is Kind.SERVICE:
            self._coherent_service()
        elif self.once is not None:
            raise FieldError("once", "only a service (kind: service) has a one-shot mode")
        if (self.entrypoint is None) == (self.command is None):
            raise FieldError("entrypoint", "give exactly one of entrypoint or command")
        if self.command is not None:
            if self.kind is Kind.LIB:
                raise FieldError("command", "a lib has no command: it is never run")
            return self._coherent_schedules()
        assert self.entrypoint is not None
        if not ENTRYPOINT.match(self.entrypoint):
            raise FieldError("entrypoint", f"{self.entrypoint!r} is not 'path/file.py:function'")
        has_function = ":" in self.entrypoint
        if self.kind is Kind.LIB:
            if has_function:
                raise FieldError("entrypoint", "a lib is a module path without ':function'")
        elif not has_function:
            raise FieldError("entrypoint", "must name the flow function: 'path/file.py:function'")
        return self._coherent_schedules()

    def _coherent_service(self) -> None:
        """A service is one long-running command, started by sync and restarted when it
        exits; what belongs to scheduled runs has no meaning for it."""
        if self.command is None:
            raise FieldError(
                "command", "a service runs a command (its loop): give command, not entrypoint"
            )
        refused = {
            "concurrency": self.concurrency is not Concurrency.FORBID,
            "quiet_hours": self.quiet_hours is not None,
            "triggers": bool(self.triggers),
            "webhook": self.webhook,
            "approval": self.approval is Approval.BEFORE_ENABLE,
        }
        why = {
            "concurrency": "exactly one instance of a service runs: concurrency must be forbid",
            "quiet_hours": "a service runs continuously; quiet hours apply to scheduled runs",
            "triggers": "a service is started by sync and restarted by the layer; for its "
            "one-shot mode use `automates trigger NAME --once`",
            "webhook": "a service is started by sync, not by the webhook",
            "approval": "before_enable gates schedules, and a service has none: use "
            "before_first_run",
        }
        for field_name, wrong in refused.items():
            if wrong:
                raise FieldError(field_name, why[field_name])

    def _coherent_retries(self) -> None:
        waits = self.retry_backoff_seconds * (2**self.retries - 1)  # before jitter
        if waits >= self.timeout_seconds:
            raise FieldError(
                "retry_backoff_seconds",
                f"{self.retries} retries wait at least {waits:.0f} s in all, which does not fit "
                f"in timeout_seconds={self.timeout_seconds}",
            )

    def _coherent_concurrency(self) -> None:
        policy, limit = self.concurrency.value, self.concurrency_limit
        if self.concurrency is not Concurrency.ALLOW:
            if limit != 1:
                raise FieldError(
                    "concurrency_limit",
                    f"concurrency: {policy} runs one at a time, so concurrency_limit must be 1 "
                    f"or left out, got {'null' if limit is None else limit}; to let runs "
                    "overlap, declare concurrency: allow",
                )
            return
        if "concurrency_limit" not in self.model_fields_set or self.concurrency_limit == 1:
            raise FieldError(
                "concurrency_limit",
                "concurrency: allow lets runs overlap, so it needs concurrency_limit: 2 or "
                "more, or null for no limit (for one run at a time, use forbid or queue_one)",
            )
        if self.touches:
            raise FieldError(
                "concurrency",
                f"a run that touches {', '.join(self.touches)} must never overlap another: "
                "use forbid, queue_one or replace, not allow",
            )

    def _coherent_schedules(self) -> Automate:
        self._coherent_retries()
        self._coherent_concurrency()
        if self.kind is Kind.RECURRING and not self.schedules:
            raise FieldError("schedules", "a recurring automate needs at least one schedule")
        if self.kind is not Kind.RECURRING and self.schedules:
            raise FieldError("schedules", f"a {self.kind.value} automate takes no schedule")
        slugs = [s.slug for s in self.schedules]
        if len(slugs) != len(set(slugs)):
            raise FieldError("schedules", f"schedule slugs must be unique, got {slugs}")
        if len(set(self.agents)) != len(self.agents):
            raise FieldError("agents", "an agent is listed twice")
        for kind in self.alerts:
            if kind not in ROUTABLE:
                kinds = ", ".join(k.value for k in ROUTABLE)
                raise FieldError(f"alerts.{kind}", f"not an alert kind ({kinds})")
        return self

    def jitter_offset(self, schedule: Schedule) -> int:
        """The stable offset of one of this automate's schedules, in seconds."""
        bound = jitter_bound(schedule.form, self.jitter_seconds)
        return stable_offset(self.name, schedule.slug, bound)

    @property
    def flow_entrypoint(self) -> str:
        """What Prefect loads: the declared flow, or for a script (a service) the guard's
        script (service) flow."""
        if self.entrypoint is not None:
            return self.entrypoint
        return SERVICE_FLOW_ENTRYPOINT if self.kind is Kind.SERVICE else SCRIPT_FLOW_ENTRYPOINT

    @property
    def entrypoint_path(self) -> str:
        """The declared file, relative to the project root (a script: its executable)."""
        if self.command is not None:
            return self.command[0]
        return self.flow_entrypoint.split(":", 1)[0]

    @property
    def flow_function(self) -> str | None:
        entrypoint = self.flow_entrypoint
        return entrypoint.split(":", 1)[1] if ":" in entrypoint else None

    @property
    def is_script(self) -> bool:
        return self.command is not None

    @property
    def soft_fails(self) -> bool:
        return self.soft_fail if self.soft_fail is not None else self.family == "audits"

    @property
    def tags(self) -> tuple[str, ...]:
        """Tags on the deployment, so the UI can filter by every axis of the registry."""
        return tuple(
            sorted(
                {
                    MANAGED_TAG,
                    f"kind:{self.kind.value}",
                    f"caste:{self.caste}",
                    f"family:{self.family}",
                    *(f"agent:{a}" for a in self.agents),
                    *((ORIGIN_AGENT_TAG,) if self.origin == "agent" else ()),
                }
            )
        )


MANAGED_TAG = "managed-by:automates"
# An automate an agent declared (a routine made through the MCP tools, docs/agents.md).
ORIGIN_AGENT_TAG = "origin:agent"
# Script automates all run this flow; it is loaded from the installed package, not the checkout.
SCRIPT_FLOW_ENTRYPOINT = "automates.guard.script:run_script"
SERVICE_FLOW_ENTRYPOINT = "automates.guard.service:run_service"


class Registry(Frozen):
    """Every declaration of the registry file, names unique."""

    automates: tuple[Automate, ...]

    def get(self, name: str) -> Automate | None:
        return next((a for a in self.automates if a.name == name), None)

    @property
    def deployable(self) -> tuple[Automate, ...]:
        return tuple(a for a in self.automates if a.kind.deployable)
