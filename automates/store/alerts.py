"""Statements on the alert outbox and its deliveries (automates/alerts/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, Update, and_, func, insert, select, text, update

from automates.registry.alert_kinds import AlertKind
from automates.states import AlertDeliveryStatus
from automates.store.rows import StoredRow, column_values
from automates.store.schema import alert_deliveries, alert_routing, alerts

NOTIFY_CHANNEL = "automates_alerts"
# One deliverer works at a time: the one holding this session lock; a second one waits.
DELIVERER_LOCK = "automates.alerts.deliverer"
OPEN = (AlertDeliveryStatus.PENDING, AlertDeliveryStatus.SENDING)
# A delivery that reached the route (or will, folded into a digest).
DELIVERED = (AlertDeliveryStatus.SENT, AlertDeliveryStatus.FOLDED, AlertDeliveryStatus.DIGESTED)


@dataclass(frozen=True, kw_only=True)
class NewAlert:
    """An alert to write to the outbox: what its raiser knows (the store adds its id and
    times)."""

    kind: AlertKind
    automate: str | None = None
    signature: str  # what makes two alerts "the same" for de-duplication: no time, no id
    condition: str | None = None  # the condition it opens or resolves
    title: str
    body: str
    flow_run_id: UUID | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert(StoredRow):
    """A row of the outbox, `alerts`: one alert raised, and whether it was routed, and its
    condition resolved."""

    id: int
    raised_at: datetime
    kind: AlertKind
    automate: str | None
    signature: str
    condition: str | None
    title: str
    body: str
    flow_run_id: UUID | None
    facts: dict[str, Any]
    routed_at: datetime | None  # fanned out into deliveries
    resolved_at: datetime | None  # a condition's end was raised


@dataclass(frozen=True)
class FoldedAlert(Alert):
    """An alert held back on a route by its rate limit, to go out in the route's digest."""

    delivery_id: int
    folded_at: datetime


@dataclass(frozen=True, kw_only=True)
class NewDelivery:
    """A delivery to add for an alert on one route: pending, or settled at once (with why)."""

    route: str
    status: AlertDeliveryStatus = AlertDeliveryStatus.PENDING
    reason: str | None = None
    finished_at: datetime | None = None
    dedupe: bool = True  # False: never suppressed as a duplicate


@dataclass(frozen=True)
class Delivery(StoredRow):
    """A row of `alert_deliveries`: one alert on one route, and what became of it."""

    id: int
    alert_id: int
    route: str
    status: AlertDeliveryStatus
    reason: str | None  # why suppressed, folded or dead; the last failure while pending
    attempts: int
    next_attempt_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None
    digest_id: int | None  # the digest alert it was sent in
    dedupe: bool


@dataclass(frozen=True)
class RouteHead(Delivery):
    """The oldest open delivery of a route, with what the deliverer decides on of its alert."""

    kind: AlertKind
    signature: str
    automate: str | None


@dataclass(frozen=True)
class ListedDelivery(Delivery):
    """A delivery with what `automates alerts list` shows of its alert."""

    kind: AlertKind
    automate: str | None
    title: str
    raised_at: datetime
    flow_run_id: UUID | None


def insert_alert(connection: Connection, row: NewAlert) -> int:
    alert_id = connection.execute(
        insert(alerts).values(**column_values(row)).returning(alerts.c.id)
    ).scalar_one()
    # Wakes the deliverer at commit (PostgreSQL delivers notifications on commit only).
    connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    return int(alert_id)


def resolve_condition(connection: Connection, condition: str) -> list[int]:
    """Mark the open alerts of a condition resolved; their ids (empty: nothing was open)."""
    rows = connection.execute(
        update(alerts)
        .where(alerts.c.condition == condition, alerts.c.resolved_at.is_(None))
        .where(alerts.c.kind == condition.split(":", 1)[0])
        .values(resolved_at=func.now())
        .returning(alerts.c.id)
    )
    return sorted(int(alert_id) for (alert_id,) in rows)


def open_conditions(connection: Connection, automate: str) -> list[str]:
    rows = connection.execute(
        select(alerts.c.condition)
        .distinct()
        .where(alerts.c.automate == automate, alerts.c.resolved_at.is_(None))
        .where(alerts.c.condition.is_not(None))
    )
    return [condition for (condition,) in rows]


def raised_since(
    connection: Connection,
    kinds: tuple[AlertKind, ...],
    since: datetime,
    condition: str | None = None,
) -> list[Alert]:
    """The alerts of `kinds` raised since `since` (of one condition, if given), oldest first:
    the breakers' openings and closings the journal audit reads, the day's spend alerts."""
    query = (
        select(alerts)
        .where(alerts.c.kind.in_([kind.value for kind in kinds]), alerts.c.raised_at >= since)
        .order_by(alerts.c.id)
    )
    if condition is not None:
        query = query.where(alerts.c.condition == condition)
    return [Alert.from_row(row) for row in connection.execute(query)]


# The routing the deliverer follows: the routes file as last synced.


def save_routing(connection: Connection, config: dict[str, Any]) -> None:
    from sqlalchemy.dialects.postgresql import insert as upsert

    statement = upsert(alert_routing).values(id=1, config=config)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["id"], set_={"config": config, "synced_at": func.now()}
        )
    )


def routing_config(connection: Connection) -> dict[str, Any] | None:
    return connection.execute(select(alert_routing.c.config)).scalar_one_or_none()


# The deliverer's statements.


def unrouted(connection: Connection, limit: int) -> list[Alert]:
    rows = connection.execute(
        select(alerts)
        .where(alerts.c.routed_at.is_(None))
        .order_by(alerts.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [Alert.from_row(row) for row in rows]


def add_deliveries(connection: Connection, alert_id: int, deliveries: list[NewDelivery]) -> None:
    if deliveries:
        connection.execute(
            insert(alert_deliveries),
            [{**column_values(d), "alert_id": alert_id} for d in deliveries],
        )
    connection.execute(update(alerts).where(alerts.c.id == alert_id).values(routed_at=func.now()))


def delivered_routes(connection: Connection, alert_ids: list[int]) -> list[str]:
    """Routes on which any of these alerts was (or is being) delivered."""
    rows = connection.execute(
        select(alert_deliveries.c.route)
        .distinct()
        .where(alert_deliveries.c.alert_id.in_(alert_ids))
        .where(alert_deliveries.c.status.in_((*DELIVERED, *OPEN)))
        .order_by(alert_deliveries.c.route)
    )
    return [route for (route,) in rows]


def route_heads(connection: Connection) -> list[RouteHead]:
    """The oldest open delivery of each route (deliveries of a route go out in order)."""
    rows = connection.execute(
        select(alert_deliveries, alerts.c.kind, alerts.c.signature, alerts.c.automate)
        .join(alerts, alerts.c.id == alert_deliveries.c.alert_id)
        .where(alert_deliveries.c.status.in_(OPEN))
        .distinct(alert_deliveries.c.route)
        .order_by(alert_deliveries.c.route, alert_deliveries.c.id)
    )
    return [RouteHead.from_row(row) for row in rows]


def earlier_duplicate(connection: Connection, delivery: RouteHead, since: datetime) -> int | None:
    """An earlier alert with the same signature delivered on the same route since `since`
    whose condition has not been resolved: its id."""
    earlier = alerts.alias("earlier")
    return connection.execute(
        select(earlier.c.id)
        .join(alert_deliveries, alert_deliveries.c.alert_id == earlier.c.id)
        .where(
            alert_deliveries.c.route == delivery.route,
            alert_deliveries.c.id < delivery.id,
            alert_deliveries.c.status.in_(DELIVERED),
            alert_deliveries.c.finished_at >= since,
            earlier.c.signature == delivery.signature,
            earlier.c.resolved_at.is_(None),
        )
        .order_by(earlier.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def sent_since(connection: Connection, route: str, since: datetime) -> int:
    return connection.execute(
        select(func.count())
        .select_from(alert_deliveries)
        .join(alerts, alerts.c.id == alert_deliveries.c.alert_id)
        .where(
            alert_deliveries.c.route == route,
            alert_deliveries.c.status == AlertDeliveryStatus.SENT,
            alert_deliveries.c.finished_at >= since,
            alerts.c.kind != "digest",
        )
    ).scalar_one()


def set_delivery(connection: Connection, delivery_id: int, **values: Any) -> None:
    connection.execute(
        update(alert_deliveries).where(alert_deliveries.c.id == delivery_id).values(**values)
    )


def _moved(
    source: AlertDeliveryStatus,
    target: AlertDeliveryStatus,
    *where: ColumnElement[bool],
    **values: Any,
) -> Update:
    """The deliveries still in `source` (of those `where` picks), moved to `target` with
    `values`. The status it moves from is part of the WHERE: a delivery another deliverer moved
    meanwhile is left alone, and not in the rowcount."""
    return (
        update(alert_deliveries)
        .where(*where, alert_deliveries.c.status == source)
        .values(status=target, **values)
    )


def claim(connection: Connection, delivery_id: int) -> bool:
    """Mark a pending delivery as being sent (committed before the send); False if another
    deliverer took it first."""
    result = connection.execute(
        _moved(
            AlertDeliveryStatus.PENDING,
            AlertDeliveryStatus.SENDING,
            alert_deliveries.c.id == delivery_id,
            attempts=alert_deliveries.c.attempts + 1,
            claimed_at=func.now(),
        )
    )
    return result.rowcount == 1


def orphaned_sends(connection: Connection) -> list[int]:
    """Deliveries left `sending` by a deliverer that stopped mid-send: back to pending."""
    rows = connection.execute(
        _moved(
            AlertDeliveryStatus.SENDING,
            AlertDeliveryStatus.PENDING,
            reason="the deliverer stopped during the send, outcome unknown: sent again",
        ).returning(alert_deliveries.c.id)
    )
    return [int(delivery_id) for (delivery_id,) in rows]


def folded_on(connection: Connection, route: str) -> list[FoldedAlert]:
    rows = connection.execute(
        select(
            alert_deliveries.c.id.label("delivery_id"),
            alert_deliveries.c.finished_at.label("folded_at"),
            alerts,
        )
        .join(alerts, alerts.c.id == alert_deliveries.c.alert_id)
        .where(
            alert_deliveries.c.route == route,
            alert_deliveries.c.status == AlertDeliveryStatus.FOLDED,
        )
        .order_by(alert_deliveries.c.id)
        .with_for_update(of=alert_deliveries)
    )
    return [FoldedAlert.from_row(row) for row in rows]


def routes_with_folded(connection: Connection) -> list[str]:
    rows = connection.execute(
        select(alert_deliveries.c.route)
        .distinct()
        .where(alert_deliveries.c.status == AlertDeliveryStatus.FOLDED)
    )
    return [route for (route,) in rows]


def mark_digested(connection: Connection, delivery_ids: list[int], digest_id: int) -> None:
    connection.execute(
        update(alert_deliveries)
        .where(alert_deliveries.c.id.in_(delivery_ids))
        .values(
            status=AlertDeliveryStatus.DIGESTED,
            digest_id=digest_id,
            reason=f"sent in digest alert #{digest_id}",
        )
    )


def undeliver_digest(connection: Connection, digest_id: int) -> None:
    """The alerts a dead digest carried are dead too (a retry of the digest revives them)."""
    connection.execute(
        _moved(
            AlertDeliveryStatus.DIGESTED,
            AlertDeliveryStatus.DEAD,
            alert_deliveries.c.digest_id == digest_id,
            reason=f"its digest, alert #{digest_id}, was not delivered",
        )
    )


def alert(connection: Connection, alert_id: int) -> Alert | None:
    row = connection.execute(select(alerts).where(alerts.c.id == alert_id)).one_or_none()
    return Alert.from_row(row) if row else None


def deliveries(
    connection: Connection,
    *,
    status: str | None = None,
    limit: int = 100,
    alert_id: int | None = None,
) -> list[ListedDelivery]:
    """Deliveries with their alert, newest first (`automates alerts list`)."""
    query = (
        select(
            alert_deliveries,
            alerts.c.kind,
            alerts.c.automate,
            alerts.c.title,
            alerts.c.raised_at,
            alerts.c.flow_run_id,
        )
        .join(alerts, alerts.c.id == alert_deliveries.c.alert_id)
        .order_by(alert_deliveries.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(alert_deliveries.c.status == status)
    if alert_id is not None:
        query = query.where(alert_deliveries.c.alert_id == alert_id)
    return [ListedDelivery.from_row(row) for row in connection.execute(query)]


def retry(connection: Connection, delivery_id: int) -> bool:
    """A dead (or failed-and-waiting) delivery, back in line now."""
    result = connection.execute(
        update(alert_deliveries)
        .where(
            and_(
                alert_deliveries.c.id == delivery_id,
                alert_deliveries.c.status.in_(
                    (AlertDeliveryStatus.DEAD, AlertDeliveryStatus.PENDING)
                ),
            )
        )
        .values(
            status=AlertDeliveryStatus.PENDING,
            next_attempt_at=func.now(),
            reason="retried by the operator",
            finished_at=None,
        )
    )
    if result.rowcount:
        # A digest retried carries its alerts again.
        digest = select(alert_deliveries.c.alert_id).where(alert_deliveries.c.id == delivery_id)
        connection.execute(
            _moved(
                AlertDeliveryStatus.DEAD,
                AlertDeliveryStatus.DIGESTED,
                alert_deliveries.c.digest_id == digest.scalar_subquery(),
                reason="sent again in its digest",
            )
        )
        connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    return result.rowcount == 1


def backoff(attempts: int, base: float, most: float) -> timedelta:
    return timedelta(seconds=min(most, base * 2 ** max(0, attempts - 1)))


def take_deliverer_lock(connection: Connection) -> bool:
    """Take the deliverer's lock for this connection's session, if free; whether it was."""
    taken = connection.execute(
        text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": DELIVERER_LOCK}
    ).scalar_one()
    connection.commit()  # a session lock: it outlives the transaction
    return bool(taken)
