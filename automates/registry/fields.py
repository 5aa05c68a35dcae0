"""The field types and the base every declaration model shares: slugs, cron expressions and
IANA timezones checked where they are written, frozen models refusing unknown keys, and the
error a model-level rule raises to name the field it is about."""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict

from automates.scheduling.forms import cron_form

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$")


def _slug(value: str) -> str:
    if not SLUG.match(value) or len(value) > 63:
        raise ValueError(
            f"{value!r} is not a slug (lowercase letters, digits and inner hyphens, 63 at most)"
        )
    return value


def _cron(value: str) -> str:
    return cron_form(value).expression  # its checks, and the fields joined by one space


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA timezone (e.g. 'Asia/Makassar')") from None
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Cron = Annotated[str, AfterValidator(_cron)]
Timezone = Annotated[str, AfterValidator(_timezone)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class FieldError(ValueError):
    """A model-level rule broken by one field; the loader reports that field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"[{field}] {message}")
