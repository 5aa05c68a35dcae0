"""Statements on the circuit breakers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert

from automates.store.schema import breakers


def lock_breaker(connection: Connection, automate: str) -> dict[str, Any]:
    """The automate's breaker row, created closed if new, locked for this transaction."""
    connection.execute(insert(breakers).values(automate=automate).on_conflict_do_nothing())
    row = connection.execute(
        select(breakers).where(breakers.c.automate == automate).with_for_update()
    ).one()
    return dict(row._mapping)


def save_breaker(connection: Connection, automate: str, **values: Any) -> None:
    connection.execute(
        update(breakers)
        .where(breakers.c.automate == automate)
        .values(**values, updated_at=datetime.now().astimezone())
    )


def all_breakers(connection: Connection) -> list[dict[str, Any]]:
    rows = connection.execute(select(breakers).order_by(breakers.c.automate))
    return [dict(row._mapping) for row in rows]


def held_automates(connection: Connection) -> frozenset[str]:
    """Automates whose breaker is not closed: their schedules stay paused."""
    rows = connection.execute(select(breakers.c.automate).where(breakers.c.state != "closed"))
    return frozenset(name for (name,) in rows)


def due_for_probe(connection: Connection, now: datetime) -> list[dict[str, Any]]:
    """Open breakers past their cool-down, and half-open ones whose probe never concluded."""
    rows = connection.execute(
        select(breakers)
        .where(breakers.c.state != "closed")
        .with_for_update(skip_locked=True)
        .order_by(breakers.c.automate)
    )
    due = []
    for row in rows:
        item = dict(row._mapping)
        since = item["probe_started_at"] if item["state"] == "half_open" else item["opened_at"]
        if since is not None and (now - since).total_seconds() >= item["cooldown_seconds"]:
            due.append(item)
    return due
