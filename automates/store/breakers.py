"""Statements on the circuit breakers (their transitions: automates/scheduling/breaker.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.dialects.postgresql import insert

from automates.scheduling.breaker import Breaker
from automates.scheduling.breaker import due_for_probe as probe_is_due
from automates.states import BreakerState
from automates.store.schema import breakers

_FIELDS = tuple(Breaker.model_fields)


def lock_breaker(connection: Connection, automate: str) -> Breaker:
    """The automate's breaker, created closed if new, locked for this transaction."""
    connection.execute(insert(breakers).values(automate=automate).on_conflict_do_nothing())
    row = connection.execute(
        select(breakers).where(breakers.c.automate == automate).with_for_update()
    ).one()
    return _breaker(row)


def save_breaker(connection: Connection, breaker: Breaker) -> None:
    values = breaker.model_dump(exclude={"automate"})
    connection.execute(
        update(breakers)
        .where(breakers.c.automate == breaker.automate)
        .values(**values, updated_at=datetime.now().astimezone())
    )


def all_breakers(connection: Connection) -> list[dict[str, Any]]:
    """Every breaker row as stored, for display (with its `updated_at`)."""
    rows = connection.execute(select(breakers).order_by(breakers.c.automate))
    return [dict(row._mapping) for row in rows]


def held_automates(connection: Connection) -> frozenset[str]:
    """Automates whose breaker is not closed: their schedules stay paused."""
    rows = connection.execute(
        select(breakers.c.automate).where(breakers.c.state != BreakerState.CLOSED)
    )
    return frozenset(name for (name,) in rows)


def due_for_probe(connection: Connection, now: datetime) -> list[Breaker]:
    """Open breakers past their cool-down, and half-open ones whose probe never concluded
    (locked; those another probe holds are skipped)."""
    rows = connection.execute(
        select(breakers)
        .where(breakers.c.state != BreakerState.CLOSED)
        .with_for_update(skip_locked=True)
        .order_by(breakers.c.automate)
    )
    return [breaker for breaker in map(_breaker, rows) if probe_is_due(breaker, now)]


def _breaker(row: Row[Any]) -> Breaker:
    return Breaker.model_validate({field: row._mapping[field] for field in _FIELDS})
