"""Self-repair applied again and again: the guard keeps mending what nobody fixed."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta

from automates.audit.model import Finding, Journals, Repair, Rule
from automates.settings.groups import AuditSettings

# The parts of a fix's text that differ between two repairs of one cause (a dated folder, a
# pid): `created missing directory /exports/2026-12-05` is the same fix every day.
_VOLATILE = re.compile(r"\d+")


def fix_kind(fix: str) -> str:
    return _VOLATILE.sub("#", fix)


def repeated_repairs(journals: Journals, settings: AuditSettings) -> list[Finding]:
    """One automate's same self-repair `repairs` times or more in `repair_days` days."""
    since = journals.now - timedelta(days=settings.repair_days)
    same: dict[tuple[str, str], list[Repair]] = defaultdict(list)
    for repair in journals.repairs:
        if repair.occurred_at > since:
            same[(repair.automate, fix_kind(repair.fix))].append(repair)
    findings = []
    for (automate, _), repairs in sorted(same.items()):
        if len(repairs) < settings.repairs:
            continue
        newest = max(repairs, key=lambda r: r.occurred_at)
        findings.append(
            Finding(
                Rule.REPEATED_REPAIR,
                f"self-repair applied {len(repairs)} times in {settings.repair_days} days, "
                f"the cause never fixed: {newest.fix}",
                automate=automate,
                facts={"repairs": len(repairs), "fix": newest.fix},
            )
        )
    return findings
