"""The agents' spend trend: each agent's daily average over the last 7 whole days against the
28 before, and a finding when it rises past `spend_factor`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from automates.audit.model import Finding, Journals, Rule
from automates.settings.groups import AuditSettings

RECENT_DAYS = 7
BASELINE_DAYS = 28


@dataclass(frozen=True)
class AgentSpend:
    """One agent's spend over the audit's whole days (UTC), for the report and the rule."""

    agent: str | None  # None: the platform's own facade calls
    yesterday: Decimal
    recent: Decimal  # the last 7 whole days
    baseline: Decimal  # the 28 days before them

    @property
    def recent_daily(self) -> Decimal:
        return self.recent / RECENT_DAYS

    @property
    def baseline_daily(self) -> Decimal:
        return self.baseline / BASELINE_DAYS


def spend_by_agent(journals: Journals) -> list[AgentSpend]:
    """Each agent's spend of yesterday, of the 7 whole days up to yesterday, and of the 28
    before them; today, not over yet, is left out."""
    yesterday = journals.now.date() - timedelta(days=1)
    recent_from = yesterday - timedelta(days=RECENT_DAYS - 1)
    baseline_from = recent_from - timedelta(days=BASELINE_DAYS)
    sums: dict[str | None, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for row in journals.spend:
        if not baseline_from <= row.day <= yesterday:
            continue
        totals = sums[row.agent]
        if row.day == yesterday:
            totals[0] += row.usd
        if row.day >= recent_from:
            totals[1] += row.usd
        else:
            totals[2] += row.usd
    return [
        AgentSpend(agent, *totals)
        for agent, totals in sorted(sums.items(), key=lambda item: item[0] or "")
    ]


def spend_rising(journals: Journals, settings: AuditSettings) -> list[Finding]:
    """Agents whose daily average of the last 7 days is over `spend_factor` times that of the
    28 days before (or who spent nothing before), once the 7 days reach `spend_min_usd`."""
    findings = []
    for spend in spend_by_agent(journals):
        if spend.recent < Decimal(str(settings.spend_min_usd)):
            continue
        factor = Decimal(str(settings.spend_factor))
        if spend.baseline and spend.recent_daily <= factor * spend.baseline_daily:
            continue
        before = (
            f"${spend.baseline_daily:.2f} a day over the {BASELINE_DAYS} days before"
            if spend.baseline
            else f"nothing in the {BASELINE_DAYS} days before"
        )
        findings.append(
            Finding(
                Rule.SPEND_RISING,
                f"spent ${spend.recent_daily:.2f} a day over the last {RECENT_DAYS} days, "
                f"against {before}",
                agent=spend.agent,
                facts={
                    "recent_usd": str(spend.recent),
                    "baseline_usd": str(spend.baseline),
                    "recent_daily_usd": f"{spend.recent_daily:.4f}",
                    "baseline_daily_usd": f"{spend.baseline_daily:.4f}",
                },
            )
        )
    return findings
