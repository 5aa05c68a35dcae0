"""Statements on holds: automates held for operator review (e.g. a catch-up too old to run)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from automates.states import HoldReason
from automates.store.rows import StoredRow
from automates.store.schema import holds


@dataclass(frozen=True)
class Hold(StoredRow):
    """A row of `holds`: an automate held for operator review, open until released."""

    id: int
    automate: str
    reason: HoldReason
    detail: str
    held_at: datetime
    released_at: datetime | None  # None while the hold is open
    released_by: str | None
    held_by: str | None  # who paused it; None for a hold the guard opened


def held_for_review(connection: Connection) -> frozenset[str]:
    """Automates with an open hold: their schedules stay paused until released."""
    rows = connection.execute(select(holds.c.automate).where(holds.c.released_at.is_(None)))
    return frozenset(name for (name,) in rows)


def open_hold(
    connection: Connection, automate: str, reason: str, detail: str, by: str | None = None
) -> int | None:
    """Open a hold; its id, or None when the automate already has an open hold for `reason`
    (one at most: the partial unique index `holds_open_idx` decides between concurrent
    callers)."""
    inserted = connection.execute(
        insert(holds)
        .values(automate=automate, reason=reason, detail=detail, held_by=by)
        .on_conflict_do_nothing(
            index_elements=[holds.c.automate, holds.c.reason],
            index_where=holds.c.released_at.is_(None),
        )
        .returning(holds.c.id)
    ).scalar_one_or_none()
    return inserted


def released_since(
    connection: Connection, automate: str, reason: str, moment: datetime
) -> Hold | None:
    """The latest hold of `automate` released at or after `moment`, if any."""
    row = connection.execute(
        select(holds)
        .where(
            holds.c.automate == automate,
            holds.c.reason == reason,
            holds.c.released_at >= moment,
        )
        .order_by(holds.c.released_at.desc())
        .limit(1)
    ).one_or_none()
    return Hold.from_row(row) if row else None


def release_hold(
    connection: Connection, automate: str, by: str, reason: HoldReason | None = None
) -> list[Hold]:
    """Release every open hold of `automate` (of one `reason`, if given), recording who and
    when; the released rows."""
    query = update(holds).where(holds.c.automate == automate, holds.c.released_at.is_(None))
    if reason is not None:
        query = query.where(holds.c.reason == reason)
    rows = connection.execute(
        query.values(released_at=func.now(), released_by=by).returning(*holds.c)
    )
    return [Hold.from_row(row) for row in rows]


def open_hold_of(connection: Connection, automate: str, reason: HoldReason) -> Hold | None:
    row = connection.execute(
        select(holds).where(
            holds.c.automate == automate, holds.c.reason == reason, holds.c.released_at.is_(None)
        )
    ).one_or_none()
    return Hold.from_row(row) if row else None


def list_holds(connection: Connection, *, include_released: bool = False) -> list[Hold]:
    """Holds, newest first: the open ones, or all."""
    query = select(holds).order_by(holds.c.held_at.desc(), holds.c.id.desc())
    if not include_released:
        query = query.where(holds.c.released_at.is_(None))
    return [Hold.from_row(row) for row in connection.execute(query)]


def ever_held(connection: Connection, automate: str) -> bool:
    found = connection.execute(select(holds.c.id).where(holds.c.automate == automate).limit(1))
    return found.first() is not None
