"""Every rule of the journal audit, in the order the morning report lists their findings."""

from __future__ import annotations

from collections.abc import Callable

from automates.audit.breakers import flapping
from automates.audit.durations import duration_drift, near_timeout
from automates.audit.model import Finding, Journals
from automates.audit.outcomes import not_succeeding, repeated_failures
from automates.audit.repairs import repeated_repairs
from automates.audit.spend import spend_rising
from automates.settings.groups import AuditSettings

RuleFunction = Callable[[Journals, AuditSettings], list[Finding]]

RULES: tuple[RuleFunction, ...] = (
    repeated_failures,
    not_succeeding,
    repeated_repairs,
    flapping,
    duration_drift,
    near_timeout,
    spend_rising,
)


def audit(journals: Journals, settings: AuditSettings) -> list[Finding]:
    """Every finding of every rule over the journals."""
    return [finding for rule in RULES for finding in rule(journals, settings)]
