"""What the audit reads (plain rows) and what it finds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from automates.states import RunOutcome


@dataclass(frozen=True)
class Run:
    """A journaled run, as much of it as the rules read."""

    automate: str
    finished_at: datetime
    duration_seconds: float
    outcome: RunOutcome


@dataclass(frozen=True)
class Repair:
    """A failed attempt on which self-repair acted (or refused to): its `fix_applied`."""

    automate: str
    occurred_at: datetime
    fix: str


@dataclass(frozen=True)
class BreakerEvent:
    """A breaker opening (at its threshold) or closing (a probe's success, a reset)."""

    automate: str
    at: datetime
    opened: bool


@dataclass(frozen=True)
class Declared:
    """A declaration as the rules need it."""

    automate: str
    timeout_seconds: int
    recurring: bool  # enabled, kind recurring, with at least one schedule


@dataclass(frozen=True)
class DaySpend:
    """What one agent (None: the platform's own facade calls) spent on one UTC day."""

    agent: str | None
    day: date
    usd: Decimal


@dataclass(frozen=True)
class Journals:
    """Everything one audit reads, as of `now`."""

    now: datetime
    runs: Sequence[Run] = ()
    repairs: Sequence[Repair] = ()
    breaker_events: Sequence[BreakerEvent] = ()
    declared: Sequence[Declared] = ()
    spend: Sequence[DaySpend] = ()


class Rule(StrEnum):
    """What a finding is about; each rule's module says when it holds."""

    REPEATED_FAILURES = "repeated_failures"
    REPEATED_REPAIR = "repeated_repair"
    FLAPPING_BREAKER = "flapping_breaker"
    DURATION_DRIFT = "duration_drift"
    NEAR_TIMEOUT = "near_timeout"
    NOT_SUCCEEDING = "not_succeeding"
    SPEND_RISING = "spend_rising"


@dataclass(frozen=True)
class Finding:
    """One thing the audit found: about an automate, or an agent's spend."""

    rule: Rule
    message: str  # one line: what, how much, over which window
    automate: str | None = None
    agent: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        if self.automate is not None:
            return self.automate
        return f"agent {self.agent}" if self.agent else "the platform's own calls"
