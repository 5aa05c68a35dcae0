"""Daily spend thresholds: once an agent's spend of the day (UTC; task runs and LLM facade
calls) passes its warn or critical threshold, one alert per level and day, for the agent and
for the platform as a whole (settings.spend).

Called in the transaction that records a spend, so the alert is written with the fact (or not
at all); the check is serialised per agent and for the platform, so two spends recorded at once
cannot both raise the day's alert.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal

from sqlalchemy import Connection

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.registry.alert_kinds import AlertKind
from automates.settings import Settings
from automates.settings.groups import SpendThresholds
from automates.store import alerts as alert_rows
from automates.store import spend

PLATFORM = "platform"


def alert_thresholds(
    connection: Connection, agent: str | None, settings: Settings, now: datetime | None = None
) -> list[AlertKind]:
    """Raise the day's threshold alerts the agent's and the platform's spend now call for, each
    once a day; the kinds raised (the agent's first)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = datetime.combine(now.date(), time(), UTC)
    checks: list[tuple[str | None, SpendThresholds]] = []
    if agent is not None:
        checks.append((agent, settings.spend.agent(agent)))
    checks.append((None, settings.spend.platform))
    raised: list[AlertKind] = []
    for who, thresholds in checks:  # always the agent before the platform: one lock order
        spend.lock_spend_alerts(connection, who or PLATFORM)
        spent = spend.spent_since(connection, midnight, who)
        for kind, threshold in (
            (AlertKind.SPEND_WARNING, thresholds.warn),
            (AlertKind.SPEND_CRITICAL, thresholds.critical),
        ):
            if spent < _dollars(threshold):
                continue
            alert = catalog.spend_threshold(kind, who, spent, threshold, now.date())
            if alert_rows.raised_since(connection, (kind,), midnight, alert.row().condition):
                continue  # today's alert of this level is out already
            raise_alert(connection, alert)
            raised.append(kind)
    return raised


def _dollars(amount: float) -> Decimal:
    return Decimal(str(amount))
