"""The field types and the base every declaration model shares: slugs, cron expressions,
IANA timezones and bounded parameters checked where they are written, frozen models refusing
unknown keys and strings longer than MAX_STRING_CHARS, and the error a model-level rule raises
to name the field it is about."""

from __future__ import annotations

import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict

from automates.registry.limits import MAX_STRING_CHARS, parameters_problem
from automates.scheduling.forms import cron_form

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$")


def shown(value: str) -> str:
    """A declared value as a message quotes it: cut, so one huge value cannot flood output."""
    return repr(value) if len(value) <= 80 else f"{value[:60]!r}... ({len(value)} characters)"


def _slug(value: str) -> str:
    if not SLUG.match(value) or len(value) > 63:
        raise ValueError(
            f"{shown(value)} is not a slug "
            "(lowercase letters, digits and inner hyphens, 63 at most)"
        )
    return value


def _cron(value: str) -> str:
    return cron_form(value).expression  # its checks, and the fields joined by one space


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        raise ValueError(f"{shown(value)} is not an IANA timezone (e.g. 'Asia/Makassar')") from None
    return value


def _parameters(value: dict[str, Any]) -> dict[str, Any]:
    problem = parameters_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _inside(value: str) -> str:
    # A declared file is read at run time (env files into the run's environment): an absolute
    # path or a `..` would let a declaration read any file of the worker's host.
    parts = value.replace("\\", "/").split("/")
    if value.startswith(("/", "~")) or ".." in parts or not value.strip():
        raise ValueError(f"{shown(value)} must be a path inside the checkout (relative, no '..')")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
# A file of the checkout, named relative to its root.
CheckoutPath = Annotated[str, AfterValidator(_inside)]
Cron = Annotated[str, AfterValidator(_cron)]
Timezone = Annotated[str, AfterValidator(_timezone)]
# Flow parameters: JSON values, bounded in depth and size (limits.py).
Parameters = Annotated[dict[str, Any], AfterValidator(_parameters)]


class Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, str_max_length=MAX_STRING_CHARS
    )


class FieldError(ValueError):
    """A model-level rule broken by one field; the loader reports that field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"[{field}] {message}")
