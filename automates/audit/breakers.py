"""Flapping breakers: opened, closed, opened again."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from automates.audit.model import BreakerEvent, Finding, Journals, Rule
from automates.settings.groups import AuditSettings


def flapping(journals: Journals, settings: AuditSettings) -> list[Finding]:
    """Breakers that opened `flapping_openings` times or more in `flapping_days` days: each
    opening after the first means it closed in between, so the automate fails in bursts that
    a probe's success does not end."""
    since = journals.now - timedelta(days=settings.flapping_days)
    events: dict[str, list[BreakerEvent]] = defaultdict(list)
    for event in journals.breaker_events:
        if event.at > since:
            events[event.automate].append(event)
    findings = []
    for automate, own in sorted(events.items()):
        openings = sum(1 for event in own if event.opened)
        if openings < settings.flapping_openings:
            continue
        closings = len(own) - openings
        findings.append(
            Finding(
                Rule.FLAPPING_BREAKER,
                f"breaker opened {openings} times and closed {closings} times in "
                f"{settings.flapping_days} days",
                automate=automate,
                facts={"openings": openings, "closings": closings},
            )
        )
    return findings
