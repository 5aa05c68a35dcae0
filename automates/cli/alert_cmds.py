"""`automates alerts list | test ROUTE | retry ID`: what became of every alert, and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from prefect.settings import PREFECT_API_URL, temporary_settings
from rich.table import Table

from automates.alerts.routes import load_routing
from automates.alerts.secrets import route_secrets
from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.errors import AutomatesError
from automates.states import AlertDeliveryStatus
from automates.store import alerts as store
from automates.store.database import database_url
from automates.store.engine import transaction_on
from automates.store.schema import DELIVERY_STATUSES

app = typer.Typer(help="Alerts: deliveries per route, a test send, a retry.")

_SHOWN = (
    "id",
    "alert_id",
    "kind",
    "automate",
    "route",
    "status",
    "reason",
    "attempts",
    "title",
    "raised_at",
    "finished_at",
    "flow_run_id",
)


@app.command("list")
@handle_errors
def list_(
    status: str | None = typer.Option(
        None, help=f"Only deliveries in this status ({', '.join(DELIVERY_STATUSES)})."
    ),
    limit: int = typer.Option(50, min=1, max=10_000, help="At most this many, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """Deliveries of alerts, newest first: route, status and why (sent, suppressed as a
    duplicate or by a delivery mode, folded past a rate limit, dead after retries)."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise AutomatesError(f"--status: {status!r} is not one of {', '.join(DELIVERY_STATUSES)}")
    with transaction_on(database_url(load_settings())) as connection:
        rows = store.deliveries(connection, status=status, limit=limit)
    if as_json:
        emit_json([{key: getattr(row, key) for key in _SHOWN} for row in rows])
        return
    table = Table("id", "alert", "kind", "automate", "route", "status", "why / title")
    for row in rows:
        table.add_row(
            str(row.id),
            str(row.alert_id),
            row.kind,
            row.automate or "-",
            row.route,
            row.status,
            row.reason or row.title,
        )
    console.print(table)


@app.command()
@handle_errors
def test(
    route: str = typer.Argument(..., help="A route of the routes file."),
    as_json: bool = JsonOption,
) -> None:
    """Send a test message on a route now (a real send, not through the outbox)."""
    from automates.alerts.channels import Envelope, send  # apprise: only for this command

    settings = load_settings()
    routing = load_routing(settings.routes_path)
    found = routing.all_routes.get(route)
    if found is None:
        known = ", ".join(sorted(routing.all_routes))
        raise AutomatesError(f"no route named {route!r} in {settings.routes_path} ({known})")
    now = datetime.now(UTC)
    envelope = Envelope(
        title=f"[automates] test of route {route}",
        body=f"A test message from `automates alerts test {route}` at {now:%Y-%m-%d %H:%M:%S} "
        "UTC. Alerts on this route will look like this.",
        idempotency_key=f"automates-test-{route}-{now:%Y%m%dT%H%M%S}",
        fields={"kind": "test", "route": route},
    )
    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
        secrets = route_secrets(found)  # RouteSecretError names the field and where
    outcome = send(
        found.channel, found.options, secrets, envelope, settings.alert.send_timeout_seconds
    )
    result: dict[str, Any] = {
        "route": route,
        "channel": found.channel.value,
        "sent": outcome.ok,
        "detail": outcome.detail,
    }
    if as_json:
        emit_json(result)
    elif outcome.ok:
        console.print(f"[green]sent[/green] on {route} ({found.channel.value})")
    else:
        console.print(f"[red]not sent[/red] on {route} ({found.channel.value}): {outcome.detail}")
    if not outcome.ok:
        raise typer.Exit(1)


@app.command()
@handle_errors
def retry(
    delivery_id: int = typer.Argument(..., help="The delivery's id (`automates alerts list`)."),
    as_json: bool = JsonOption,
) -> None:
    """Send a dead delivery again now (or one waiting for its next attempt)."""
    with transaction_on(database_url(load_settings())) as connection:
        if not store.retry(connection, delivery_id):
            raise AutomatesError(
                f"delivery {delivery_id} is not dead or waiting: nothing to retry "
                "(`automates alerts list --status dead`)"
            )
    if as_json:
        emit_json({"delivery_id": delivery_id, "status": AlertDeliveryStatus.PENDING})
    else:
        console.print(f"delivery {delivery_id} is back in line")
