"""The deliverer: turns the outbox into messages, once per alert and route, in order.

One deliverer works at a time (a PostgreSQL advisory lock; a second one waits as a standby).
Each pass:
1. routes new alerts (fanout.py): one delivery row per route the alert goes to (outcomes by
   the automate's `delivery`, conditions by `alerts:`, resolutions where the alert they
   resolve went, dead letters to the fallback route); a silent outcome is recorded as
   suppressed, with why;
2. folds alerts past a route's rate limit into one digest once the oldest has waited
   `digest_seconds`;
3. sends the oldest open delivery of every route, routes side by side in threads: first
   de-duplicated (same signature sent on the route within its window, condition unresolved)
   or folded (rate limit); otherwise marked `sending` and committed, sent, then marked `sent`,
   or `pending` again with exponential backoff, or `dead` after alert_max_attempts (a dead
   letter is then raised for the fallback route).

A delivery found `sending` when a deliverer starts was cut mid-send: its outcome is unknown,
so it is sent again (the receiver may see it twice, at most once per crash and route, with
the same Idempotency-Key). Nothing else is ever sent twice: a delivery is sent only from
`pending`, and `sent` is final.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from automates.alerts import fanout, message
from automates.alerts.channels import Channel, SendOutcome, send
from automates.alerts.outbox import Alert, raise_alert
from automates.alerts.routes import Route, Routing
from automates.alerts.secrets import RouteSecretError, route_secrets
from automates.registry.alert_kinds import AlertKind
from automates.settings import Settings
from automates.states import AlertDeliveryStatus
from automates.store import alerts as store
from automates.store.engine import transaction

log = logging.getLogger("automates.alerts")

# Sends in flight at once: one per route at most, so this bounds the routes sent to at once.
SEND_THREADS = 32
Sender = Callable[[Channel, dict[str, Any], dict[str, str], Any, float], SendOutcome]


class Deliverer:
    def __init__(self, settings: Settings, engine: Engine, sender: Sender | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self._send = sender or send
        self._threads = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="alert-send")
        self._wake = threading.Event()  # an alert committed, a send ended
        self._next_due: datetime | None = None  # the next retry's time
        self._events = _events_wanted()

    # The loop.

    def serve(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set: as soon as an alert is committed (LISTEN) or a send
        ends, when a retry comes due, and at least every alert_poll_seconds."""
        poll = self.settings.alert.poll_seconds
        with self.engine.connect() as lock:
            while not store.take_deliverer_lock(lock):
                if stop.wait(poll * 4):
                    return
            with transaction(self.engine) as connection:
                orphans = store.orphaned_sends(connection)
            if orphans:
                log.warning("deliveries %s were cut mid-send: sending them again", orphans)
            listener = threading.Thread(
                target=self._listen, args=(stop,), name="alert-listen", daemon=True
            )
            listener.start()
            while not stop.is_set():
                self._wake.clear()
                try:
                    busy = self.step()
                except Exception:  # a pass that failed is retried; the loop never dies
                    log.exception("alert delivery pass failed")
                    busy = False
                if not busy:
                    self._wake.wait(self._idle_wait(poll))
            self._threads.shutdown(wait=True)  # the sends in flight end, and are recorded
            listener.join()

    def _listen(self, stop: threading.Event) -> None:
        """Wake the loop on every alert committed (the outbox's NOTIFY)."""
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(False)
        while not stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {store.NOTIFY_CHANNEL}")
                    while not stop.is_set():
                        for _ in connection.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except psycopg.Error:  # the database restarts: the poll covers the gap
                log.warning("alert listener lost its connection; reconnecting", exc_info=True)
                stop.wait(self.settings.alert.poll_seconds)

    def _idle_wait(self, poll: float) -> float:
        """Until the next retry comes due, at most `poll`."""
        if self._next_due is None:
            return poll
        left = (self._next_due - datetime.now(UTC)).total_seconds()
        return min(poll, max(0.01, left))

    def step(self) -> bool:
        """One pass; whether it did anything (then another follows at once)."""
        with transaction(self.engine) as connection:
            routing = self._routing(connection)
        routed = fanout.route_new(self.engine, routing)
        digested = self._digest_folded(routing)
        sent = self._send_heads(routing)
        return routed or digested or sent

    # 1. Routing (fanout.py), by the routes file `sync` stored.

    def _routing(self, connection: Connection) -> Routing:
        config = store.routing_config(connection)
        return Routing.model_validate(config) if config else Routing()

    # 2. Digests.

    def _digest_folded(self, routing: Routing) -> bool:
        done = False
        now = datetime.now(UTC)
        with transaction(self.engine) as connection:
            for name in store.routes_with_folded(connection):
                route = routing.all_routes.get(name) or Route(name=name, channel=Channel.LOG)
                folded = store.folded_on(connection, name)
                if not folded or now - folded[0].folded_at < timedelta(
                    seconds=route.digest_seconds
                ):
                    continue
                title, body = message.digest(name, folded, route.rate_limit_per_hour)
                digest_id = store.insert_alert(
                    connection,
                    store.NewAlert(
                        kind=AlertKind.DIGEST,
                        signature=f"digest|{name}|{folded[0].id}",
                        title=title,
                        body=body,
                        facts={"folded": [item.id for item in folded]},
                    ),
                )
                store.add_deliveries(
                    connection, digest_id, [store.NewDelivery(route=name, dedupe=False)]
                )
                store.mark_digested(connection, [item.delivery_id for item in folded], digest_id)
                done = True
        return done

    # 3. Sending.

    def _send_heads(self, routing: Routing) -> bool:
        """Start the send of each route's oldest delivery, if due; sends run in threads and
        this pass does not wait for them (a slow route holds back only itself)."""
        with transaction(self.engine) as connection:
            heads = store.route_heads(connection)
        now = datetime.now(UTC)
        acted = False
        self._next_due = None
        for head in heads:
            if head.status != AlertDeliveryStatus.PENDING:
                continue  # being sent: the route waits for the outcome
            if head.next_attempt_at > now:
                due = head.next_attempt_at
                self._next_due = due if self._next_due is None else min(self._next_due, due)
                continue
            acted = True
            route = routing.all_routes.get(head.route)
            with transaction(self.engine) as connection:
                if self._decided(connection, head, route, now):
                    continue
                if route is None or not store.claim(connection, head.id):
                    continue
            future = self._threads.submit(self._send_one, head, route)
            future.add_done_callback(self._sent)
        return acted

    def _sent(self, future: Future[None]) -> None:
        if future.exception() is not None:  # recorded as still `sending`: retried at restart
            log.error("alert send failed unexpectedly", exc_info=future.exception())
        self._wake.set()

    def _decided(
        self, connection: Connection, head: store.RouteHead, route: Route | None, now: datetime
    ) -> bool:
        """Settle a delivery without sending it (gone route, duplicate, rate limit): whether it
        was settled."""
        kind = head.kind
        if route is None:
            self._dead(connection, head, f"route {head.route!r} is no longer declared", now)
            return True
        if head.attempts > 0 or kind in (AlertKind.DIGEST, AlertKind.DEAD_LETTER):
            return False  # decided at the first attempt; digests and dead letters always go
        if head.dedupe and route.dedupe_window_seconds:
            since = now - timedelta(seconds=route.dedupe_window_seconds)
            duplicate = store.earlier_duplicate(connection, head, since)
            if duplicate is not None:
                reason = (
                    f"duplicate of alert #{duplicate}, delivered on this route within "
                    f"{_span(route.dedupe_window_seconds)} and not resolved since"
                )
                self._settle(connection, head, AlertDeliveryStatus.SUPPRESSED, reason, now)
                return True
        if kind.resolved is None:
            sent = store.sent_since(connection, route.name, now - timedelta(hours=1))
            if sent >= route.rate_limit_per_hour:
                reason = (
                    f"rate limit of {route.rate_limit_per_hour}/hour reached: folded into the "
                    f"next digest (within {_span(route.digest_seconds)})"
                )
                self._settle(connection, head, AlertDeliveryStatus.FOLDED, reason, now)
                return True
        return False

    def _send_one(self, head: store.RouteHead, route: Route) -> None:
        with transaction(self.engine) as connection:
            alert = store.alert(connection, head.alert_id)
        assert alert is not None  # deliveries cascade with their alert
        envelope = message.envelope(alert, route.name, self.settings.ui_url)
        try:
            secrets = route_secrets(route)
        except RouteSecretError as error:
            outcome = SendOutcome(ok=False, detail=str(error))
        else:
            try:
                outcome = self._send(
                    route.channel,
                    route.options,
                    secrets,
                    envelope,
                    self.settings.alert.send_timeout_seconds,
                )
            except Exception as error:  # a sender bug must not leave the row `sending`
                outcome = SendOutcome(ok=False, detail=f"{type(error).__name__}")
        if route.channel is Channel.LOG and outcome.ok:
            log.warning("alert #%s %s: %s", alert.id, alert.kind, alert.title)
        now = datetime.now(UTC)
        with transaction(self.engine) as connection:
            if outcome.ok:
                self._settle(connection, head, AlertDeliveryStatus.SENT, None, now)
            elif head.attempts + 1 >= self.settings.alert.max_attempts:
                self._dead(connection, head, outcome.detail, now)
            else:
                wait = store.backoff(
                    head.attempts + 1,
                    self.settings.alert.retry_seconds,
                    self.settings.alert.retry_max_seconds,
                )
                store.set_delivery(
                    connection,
                    head.id,
                    status=AlertDeliveryStatus.PENDING,
                    reason=f"attempt {head.attempts + 1} failed: {outcome.detail}",
                    next_attempt_at=now + wait,
                )

    def _settle(
        self,
        connection: Connection,
        head: store.RouteHead,
        status: AlertDeliveryStatus,
        reason: str | None,
        now: datetime,
    ) -> None:
        store.set_delivery(connection, head.id, status=status, reason=reason, finished_at=now)
        if self._events:
            _event(head, status, reason)

    def _dead(
        self, connection: Connection, head: store.RouteHead, reason: str, now: datetime
    ) -> None:
        self._settle(connection, head, AlertDeliveryStatus.DEAD, reason, now)
        if head.kind is AlertKind.DIGEST:  # what it carried did not arrive either
            store.undeliver_digest(connection, head.alert_id)
        if head.kind is AlertKind.DEAD_LETTER:
            return  # the fallback route itself failed: journaled and visible, not looped
        raise_alert(
            connection,
            Alert(
                kind=AlertKind.DEAD_LETTER,
                automate=head.automate,
                title=f"an alert could not be delivered on route {head.route}",
                body=(
                    f"Alert #{head.alert_id} ({head.kind}) was not delivered on route "
                    f"{head.route} after {head.attempts + 1} attempt(s): {reason}. "
                    f"`automates alerts retry {head.id}` sends it again."
                ),
                reason=f"{head.route} {head.alert_id}",
                facts={"delivery_id": head.id, "alert_id": head.alert_id},
            ),
        )


def _span(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _events_wanted() -> bool:
    """Whether there is a Prefect API to send events to (without one, Prefect would start an
    ephemeral server in this process to take them)."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def _event(head: store.RouteHead, status: AlertDeliveryStatus, reason: str | None) -> None:
    """The delivery in Prefect's event feed (best effort: the store is the record)."""
    try:
        from prefect.events import emit_event

        related = []
        if head.automate:
            related.append(
                {
                    "prefect.resource.id": f"automates.automate.{head.automate}",
                    "prefect.resource.role": "automate",
                }
            )
        emit_event(
            event=f"automates.alert.{status}",
            resource={
                "prefect.resource.id": f"automates.alert.{head.alert_id}",
                "automates.route": head.route,
                "automates.kind": head.kind.value,
            },
            related=related,
            payload={"delivery_id": head.id, "reason": reason},
        )
    except Exception:  # no events client here (tests, no API): the store has it all
        log.debug("alert event not emitted", exc_info=True)
