"""Which routes an alert goes to: step 1 of each deliverer pass (deliverer.py).

Each new alert gets one delivery row per route: outcomes by the automate's `delivery` (or the
routes file's), conditions by its `alerts:` (or the routes file's), resolutions where the
alerts they resolve went, dead letters to the fallback route. A silent outcome is recorded as
suppressed, with why; a route listed twice gets the alert once; an alert that cannot be routed
is journaled only, and never holds back the ones after it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from automates.alerts.routes import JOURNAL, Routing
from automates.registry.alert_kinds import AlertKind
from automates.registry.delivery import Delivery
from automates.states import AlertDeliveryStatus
from automates.store import alerts as store
from automates.store.engine import transaction
from automates.store.registry import stored_declarations

log = logging.getLogger("automates.alerts")

# New alerts routed in one transaction.
ROUTE_BATCH = 500


def route_new(engine: Engine, routing: Routing) -> bool:
    """Give each new alert (a batch at a time) its deliveries; whether there were any."""
    with transaction(engine) as connection:
        rows = store.unrouted(connection, ROUTE_BATCH)
        if not rows:
            return False
        overrides = _overrides(
            connection, {row.automate for row in rows if row.automate is not None}
        )
        for row in rows:
            try:
                with connection.begin_nested():  # one alert that cannot be routed
                    deliveries = _deliveries(connection, row, routing, overrides)
                    store.add_deliveries(connection, row.id, _once_per_route(deliveries))
            except Exception as error:  # must not hold back every alert after it
                log.exception("alert #%s could not be routed", row.id)
                reason = f"could not be routed ({type(error).__name__}): journaled only"
                journaled = _silent(JOURNAL, reason, datetime.now(UTC))
                store.add_deliveries(connection, row.id, [journaled])
    return True


def _deliveries(
    connection: Connection,
    alert: store.Alert,
    routing: Routing,
    overrides: dict[str, tuple[Delivery | None, dict[str, tuple[str, ...]]]],
) -> list[store.NewDelivery]:
    kind = alert.kind
    delivery, routes_by_kind = (
        overrides.get(alert.automate, (None, {})) if alert.automate is not None else (None, {})
    )
    if kind.is_outcome:
        chosen = delivery or routing.delivery
        routes = chosen.routes or routing.default_routes
        if not chosen.mode.delivers(kind):
            now = datetime.now(UTC)
            reason = f"delivery mode {chosen.mode.value}: {kind.value} is not delivered"
            return [_silent(route, reason, now) for route in routes]
        dedupe = not (kind is AlertKind.RUN_COMPLETED and chosen.unchanged)
        return [store.NewDelivery(route=route, dedupe=dedupe) for route in routes]
    if kind.resolved is not None:
        resolved = list(alert.facts.get("resolves", []))
        reached = store.delivered_routes(connection, resolved)
        if not reached:
            reason = "the alerts it resolves reached no route"
            return [_silent(JOURNAL, reason, datetime.now(UTC))]
        return [store.NewDelivery(route=route, dedupe=False) for route in reached]
    if kind is AlertKind.DEAD_LETTER:
        return [store.NewDelivery(route=routing.fallback, dedupe=False)]
    return [store.NewDelivery(route=route) for route in routing.routes_for(kind, routes_by_kind)]


def _overrides(
    connection: Connection, names: set[str]
) -> dict[str, tuple[Delivery | None, dict[str, tuple[str, ...]]]]:
    """Each automate's synced `delivery` and `alerts` (from its stored declaration)."""
    found = {}
    for name, declaration in stored_declarations(connection, names).items():
        delivery = declaration.get("delivery")
        found[name] = (
            Delivery.model_validate(delivery) if delivery else None,
            {kind: tuple(routes) for kind, routes in (declaration.get("alerts") or {}).items()},
        )
    return found


def _once_per_route(deliveries: list[store.NewDelivery]) -> list[store.NewDelivery]:
    """A route listed twice (`[ops, ops]`) gets the alert once."""
    first: dict[str, store.NewDelivery] = {}
    for delivery in deliveries:
        first.setdefault(delivery.route, delivery)
    return list(first.values())


def _silent(route: str, reason: str, now: datetime) -> store.NewDelivery:
    return store.NewDelivery(
        route=route, status=AlertDeliveryStatus.SUPPRESSED, reason=reason, finished_at=now
    )
