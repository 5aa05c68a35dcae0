"""Statements on the circuit breakers (their transitions: automates/scheduling/breaker.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.dialects.postgresql import insert

from automates.scheduling.breaker import Breaker
from automates.scheduling.breaker import due_for_probe as probe_is_due
from automates.states import BreakerState
from automates.store.rows import StoredRow
from automates.store.schema import breakers

_FIELDS = tuple(Breaker.model_fields)


@dataclass(frozen=True)
class StoredBreaker(StoredRow):
    """A row of `breakers` as stored, for display: a `Breaker`'s columns, and when it last
    changed. Not a Breaker subclass: the rules rebuild a Breaker from every field of the one
    given and refuse an unknown one (`updated_at`); they change what `lock_breaker` reads."""

    automate: str
    state: BreakerState
    consecutive_failures: int
    opened_at: datetime | None  # when it last opened; None exactly when closed
    cooldown_seconds: int
    probe_started_at: datetime | None  # when its probe run started (half_open)
    updated_at: datetime


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


def all_breakers(connection: Connection) -> list[StoredBreaker]:
    """Every breaker row as stored, for display (with its `updated_at`)."""
    rows = connection.execute(select(breakers).order_by(breakers.c.automate))
    return [StoredBreaker.from_row(row) for row in rows]


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
