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


class Gate(StrEnum):
    """What the approval rule does with a run."""

    GO = "go"
    """No approval asked, or this version is approved: the run goes on."""
    NO_VERSION = "no_version"
    """Skipped: the deployment carries no declaration digest to approve (sync is behind)."""
    NOT_APPROVED = "not_approved"
    """Skipped: before_enable, and this version is not approved."""
    CANNOT_WAIT = "cannot_wait"
    """Skipped: before_first_run, but only a deployment's run can wait for approval."""
    WAIT = "wait"
    """before_first_run: the run is suspended until approved or rejected."""


def gate(policy: Approval, *, versioned: bool, approved: bool, can_wait: bool) -> Gate:
    """The approval rule for a run of a version that is (or is not) approved."""
    if policy is Approval.NONE:
        return Gate.GO
    if not versioned:
        return Gate.NO_VERSION
    if approved:
        return Gate.GO
    if policy is Approval.BEFORE_ENABLE:
        return Gate.NOT_APPROVED
    return Gate.WAIT if can_wait else Gate.CANNOT_WAIT
