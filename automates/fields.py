"""The field types and the base every declared model shares, registry and scheduling rules
alike: IANA timezones and bounded parameters checked where they are written, frozen models
refusing unknown keys and strings longer than MAX_STRING_CHARS, and the error a model-level
rule raises to name the field it is about."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict

from automates.limits import MAX_STRING_CHARS, parameters_problem


def shown(value: str) -> str:
    """A declared value as a message quotes it: cut, so one huge value cannot flood output."""
    return repr(value) if len(value) <= 80 else f"{value[:60]!r}... ({len(value)} characters)"


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


Timezone = Annotated[str, AfterValidator(_timezone)]
# Flow parameters: JSON values, bounded in depth and size (automates/limits.py).
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
