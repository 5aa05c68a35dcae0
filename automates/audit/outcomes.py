"""Outcome rules: an automate failing repeatedly, and a recurring one that stopped succeeding."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from automates.audit.model import Finding, Journals, Rule, Run
from automates.settings.groups import AuditSettings
from automates.states import FAILURE, SUCCESS


def repeated_failures(journals: Journals, settings: AuditSettings) -> list[Finding]:
    """Automates with `failures` or more failed, timed-out or crashed runs in the recent
    window."""
    since = journals.now - timedelta(hours=settings.recent_hours)
    failed: dict[str, list[Run]] = defaultdict(list)
    for run in journals.runs:
        if run.outcome in FAILURE and run.finished_at > since:
            failed[run.automate].append(run)
    findings = []
    for automate, runs in sorted(failed.items()):
        if len(runs) < settings.failures:
            continue
        outcomes = Counter(str(run.outcome) for run in runs)
        shown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        findings.append(
            Finding(
                Rule.REPEATED_FAILURES,
                f"{len(runs)} runs failed in the last {settings.recent_hours} h ({shown})",
                automate=automate,
                facts={"failures": len(runs), "outcomes": dict(outcomes)},
            )
        )
    return findings


def not_succeeding(journals: Journals, settings: AuditSettings) -> list[Finding]:
    """Recurring automates with no completed (or findings) run for `success_days` days: their
    newest success is older, or they never succeeded in journaled runs that long. An automate
    with no run journaled that long is left to the dead-man check (missed-run-check)."""
    limit = journals.now - timedelta(days=settings.success_days)
    runs = _by_automate(journals.runs)
    findings = []
    for declared in sorted(journals.declared, key=lambda d: d.automate):
        if not declared.recurring:
            continue
        own = runs.get(declared.automate, [])
        successes = [run.finished_at for run in own if run.outcome in SUCCESS]
        if successes:
            newest = max(successes)
            if newest > limit:
                continue
            age = (journals.now - newest).days
            message = f"no successful run for {age} days (the last ended {newest:%Y-%m-%d %H:%M})"
            facts: dict[str, Any] = {"last_success": newest.isoformat()}
        else:
            oldest = min((run.finished_at for run in own), default=None)
            if oldest is None or oldest > limit:
                continue
            message = (
                f"no successful run in {len(own)} journaled since {oldest:%Y-%m-%d %H:%M} "
                f"(over {settings.success_days} days)"
            )
            facts = {"last_success": None, "runs": len(own)}
        findings.append(
            Finding(Rule.NOT_SUCCEEDING, message, automate=declared.automate, facts=facts)
        )
    return findings


def _by_automate(runs: Sequence[Run]) -> dict[str, list[Run]]:
    grouped: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        grouped[run.automate].append(run)
    return grouped
