"""`automates breaker status | reset NAME`: the circuit breakers."""

from __future__ import annotations

import typer
from prefect.settings import PREFECT_API_URL, temporary_settings
from rich.table import Table

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.errors import UnknownAutomateError
from automates.guard.breaker import deployment_of
from automates.guard.orchestrator import PrefectOrchestrator
from automates.scheduling import breaker
from automates.states import BreakerState
from automates.store.breakers import all_breakers, lock_breaker, save_breaker
from automates.store.database import database_url
from automates.store.declared import declared_registry
from automates.store.engine import transaction_on

app = typer.Typer(help="Circuit breakers: which automates are held, and releasing them.")


@app.command()
@handle_errors
def status(as_json: bool = JsonOption) -> None:
    """Every breaker: state, consecutive failures, when it opened."""
    with transaction_on(database_url(load_settings())) as connection:
        rows = all_breakers(connection)
    if as_json:
        emit_json([row.as_dict() for row in rows])
        return
    table = Table("automate", "state", "failures", "opened", "cool-down")
    for row in rows:
        table.add_row(
            row.automate,
            row.state,
            str(row.consecutive_failures),
            f"{row.opened_at:%Y-%m-%d %H:%M}" if row.opened_at else "-",
            f"{row.cooldown_seconds} s",
        )
    console.print(table if rows else "no automate has run under the guard yet")


@app.command()
@handle_errors
def reset(name: str, as_json: bool = JsonOption) -> None:
    """Close an automate's breaker by hand and resume its schedules (if it is enabled)."""
    settings = load_settings()
    automate = declared_registry(settings).get(name)
    with transaction_on(database_url(settings)) as connection:
        if automate is None and name not in {b.automate for b in all_breakers(connection)}:
            raise UnknownAutomateError(f"no automate named {name!r} has a breaker")
        before = lock_breaker(connection, name)
        save_breaker(connection, breaker.reset(before))
        if before.state is not BreakerState.CLOSED:
            raise_alert(connection, catalog.breaker_closed(name))
    schedules = "untouched (not declared any more)"
    if automate is not None:
        with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
            deployment_id = deployment_of(name)
            if deployment_id is None:
                schedules = "untouched (no deployment: run `automates sync`)"
            else:
                PrefectOrchestrator().set_schedules_active(deployment_id, active=automate.enabled)
                schedules = "resumed" if automate.enabled else "kept inactive (disabled)"
    result = {
        "automate": name,
        "was": before.state,
        "now": BreakerState.CLOSED,
        "schedules": schedules,
    }
    if as_json:
        emit_json(result)
    else:
        console.print(f"breaker of {name}: {before.state} → closed; schedules {schedules}")
