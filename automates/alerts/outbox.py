"""Raising an alert: one row in the store's outbox, written in the caller's transaction.

The alert is written with the fact it reports (the run's journal row, the breaker's new
state, the hold) or not at all, so a process dying after the fact was written cannot lose its
alert, and one dying before cannot send an alert about a fact that never happened. Routing,
de-duplication, rate limits and sending are the deliverer's (deliverer.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from automates.registry.alert_kinds import AlertKind, condition
from automates.store import alerts as store

# Parts of a reason that differ between two occurrences of the same problem.
_VOLATILE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # ids
    r"|\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?)?"  # dates, times
    r"|\b\d{2}:\d{2}(:\d{2})?\b"  # times of day
    r"|\b\d{5,}\b",  # pids, counters, epochs
    re.IGNORECASE,
)
MAX_TITLE = 200
MAX_BODY = 4000


def normalized(reason: str) -> str:
    return " ".join(_VOLATILE.sub("#", reason).split())[:500]


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    automate: str | None
    title: str
    body: str
    # What identifies the problem (no times, no ids); the signature de-duplicates on it.
    reason: str = ""
    flow_run_id: UUID | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    # What the condition is about when it is no automate (a component of the layer).
    subject: str | None = None

    @property
    def signature(self) -> str:
        return f"{self.kind.value}|{self.automate or '-'}|{normalized(self.reason or self.title)}"

    def row(self) -> store.NewAlert:
        return store.NewAlert(
            kind=self.kind,
            automate=self.automate,
            signature=self.signature,
            condition=condition(self.kind, self.automate or self.subject),
            title=self.title[:MAX_TITLE],
            body=self.body[:MAX_BODY],
            flow_run_id=self.flow_run_id,
            facts=dict(self.facts),
        )


def raise_alert(connection: Connection, alert: Alert) -> int | None:
    """Write the alert to the outbox; its id. A resolution is written only when the condition
    it ends is open (an earlier alert opened it and nothing resolved it since): None if not."""
    row = alert.row()
    if alert.kind.resolved is not None:
        assert row.condition is not None  # a resolution ends a condition
        opened = store.resolve_condition(connection, row.condition)
        if not opened:
            return None
        row = replace(row, facts={**row.facts, "resolves": opened})
    return store.insert_alert(connection, row)
