"""Frozen, validated models of the declarations.

A declaration that cannot run as declared fails here, where it is written, naming the field:
an unknown key, a cron expression croniter refuses, a timezone tzdata does not know, a recurring
automate without a schedule.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$")
ENTRYPOINT = re.compile(r"^[\w./-]+\.py(:[A-Za-z_]\w*)?$")
MAX_TIMEOUT_SECONDS = 1800


def _slug(value: str) -> str:
    if not SLUG.match(value) or len(value) > 63:
        raise ValueError(
            f"{value!r} is not a slug (lowercase letters, digits and inner hyphens, 63 at most)"
        )
    return value


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"{value!r} is not a 5-field cron expression (minute hour day month dow)")
    if not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a valid cron expression")
    return " ".join(fields)


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA timezone (e.g. 'Asia/Makassar')") from None
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Cron = Annotated[str, AfterValidator(_cron)]
Timezone = Annotated[str, AfterValidator(_timezone)]


class Kind(StrEnum):
    """Technical nature of an automate (seed 000: kind)."""

    RECURRING = "recurring"  # scheduled
    ONESHOT = "oneshot"  # run on demand
    TOOL = "tool"  # invoked by an agent or a skill
    LIB = "lib"  # shared library: importable, never run, no deployment
    META = "meta"  # tooling about the layer itself

    @property
    def deployable(self) -> bool:
        return self is not Kind.LIB


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Schedule(Frozen):
    """One cron schedule of an automate, in an IANA timezone."""

    slug: Slug = Field(default="default", description="Stable id of the schedule on the server.")
    cron: Cron
    timezone: Timezone = "UTC"
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Flow parameters for runs of this schedule only."
    )


class Automate(Frozen):
    """One declared automate."""

    name: Slug
    kind: Kind
    caste: Slug = Field(description="Owning agent group, e.g. vigies, horlogers.")
    family: Slug = Field(description="Functional family, e.g. audits, backups.")
    agents: tuple[Slug, ...] = Field(default=(), description="Owning agents.")
    description: str = Field(min_length=1)
    runbook: str | None = Field(
        default=None, description="Path of the runbook, relative to the project root."
    )
    entrypoint: str = Field(
        description="'path/to/file.py:flow_function' (a lib: 'path/to/file.py')."
    )
    schedules: tuple[Schedule, ...] = ()
    timeout_seconds: int = Field(default=300, ge=1, le=MAX_TIMEOUT_SECONDS)
    concurrency_limit: int | None = Field(
        default=1, ge=1, description="Runs at once; 1 forbids overlap, null means unlimited."
    )
    work_pool: Slug | None = Field(default=None, description="Default: the settings' work pool.")
    enabled: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _coherent(self) -> Automate:
        if not ENTRYPOINT.match(self.entrypoint):
            raise _FieldError("entrypoint", f"{self.entrypoint!r} is not 'path/file.py:function'")
        has_function = ":" in self.entrypoint
        if self.kind is Kind.LIB:
            if has_function:
                raise _FieldError("entrypoint", "a lib is a module path without ':function'")
        elif not has_function:
            raise _FieldError("entrypoint", "must name the flow function: 'path/file.py:function'")
        if self.kind is Kind.RECURRING and not self.schedules:
            raise _FieldError("schedules", "a recurring automate needs at least one schedule")
        if self.kind is not Kind.RECURRING and self.schedules:
            raise _FieldError("schedules", f"a {self.kind.value} automate takes no schedule")
        slugs = [s.slug for s in self.schedules]
        if len(slugs) != len(set(slugs)):
            raise _FieldError("schedules", f"schedule slugs must be unique, got {slugs}")
        if len(set(self.agents)) != len(self.agents):
            raise _FieldError("agents", "an agent is listed twice")
        return self

    @property
    def entrypoint_path(self) -> str:
        return self.entrypoint.split(":", 1)[0]

    @property
    def flow_function(self) -> str | None:
        return self.entrypoint.split(":", 1)[1] if ":" in self.entrypoint else None

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
                }
            )
        )


MANAGED_TAG = "managed-by:automates"


class _FieldError(ValueError):
    """A model-level rule broken by one field; the loader reports that field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"[{field}] {message}")


class Registry(Frozen):
    """Every declaration of the registry file, names unique."""

    automates: tuple[Automate, ...]

    def get(self, name: str) -> Automate | None:
        return next((a for a in self.automates if a.name == name), None)

    @property
    def deployable(self) -> tuple[Automate, ...]:
        return tuple(a for a in self.automates if a.kind.deployable)
