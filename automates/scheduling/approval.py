"""Approval policies: whether a human approves an automate before it fires.

- `none` (default).
- `before_enable`: the declaration syncs with its schedules inactive until
  `automates approve NAME`.
- `before_first_run`: the first run after creation or change waits for approval, as a paused
  run with an approve input in the Prefect UI, or through `automates approve NAME`.

An approval is for one version of the declaration (its digest): a change asks again. Who
approved and when is recorded in the store.
"""

from __future__ import annotations

from enum import StrEnum


class Approval(StrEnum):
    NONE = "none"
    BEFORE_ENABLE = "before_enable"
    BEFORE_FIRST_RUN = "before_first_run"
