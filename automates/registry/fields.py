"""The field types only declarations use: slugs, cron expressions (checked by the scheduling
rules' cron form) and files of the checkout. The types the scheduling rules share with them
(timezones, parameters, the frozen base, FieldError) are in automates/fields.py."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from automates.fields import shown
from automates.scheduling.forms import cron_form

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$")


def _slug(value: str) -> str:
    if not SLUG.match(value) or len(value) > 63:
        raise ValueError(
            f"{shown(value)} is not a slug "
            "(lowercase letters, digits and inner hyphens, 63 at most)"
        )
    return value


def _cron(value: str) -> str:
    return cron_form(value).expression  # its checks, and the fields joined by one space


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
