"""Holds: automates held for operator review (holds, release), and an operator's own pause
(pause, resume): a hold too, so sync, reconcile and the dead-man check respect it."""

from __future__ import annotations

import getpass
from typing import Any

import typer
from prefect.settings import PREFECT_API_URL, temporary_settings
from rich.table import Table

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.cli.output import (
    JsonOption,
    console,
    emit_json,
    errors,
    handle_errors,
    load_settings,
    masked,
)
from automates.errors import AutomatesError, UnknownAutomateError
from automates.guard.breaker import deployment_of
from automates.guard.orchestrator import PrefectOrchestrator
from automates.registry.model import Automate, Registry
from automates.server.events import announce_automate
from automates.states import HoldReason
from automates.store.breakers import held_automates
from automates.store.database import database_url
from automates.store.declared import declared_registry
from automates.store.engine import transaction_on
from automates.store.held import schedules_held
from automates.store.holds import ever_held, list_holds, open_hold, open_hold_of, release_hold

app = typer.Typer()


@app.command("holds")
@handle_errors
def holds_command(
    include_released: bool = typer.Option(False, "--all", help="Released holds too."),
    as_json: bool = JsonOption,
) -> None:
    """Automates held for operator review (their schedules paused), newest first."""
    with transaction_on(database_url(load_settings())) as connection:
        rows = list_holds(connection, include_released=include_released)
    if as_json:
        emit_json([row.as_dict() for row in rows])
        return
    if not rows:
        console.print("no hold" if include_released else "no open hold")
        return
    table = Table("automate", "reason", "held at", "released", "detail")
    for row in rows:
        released = (
            f"{row.released_at:%Y-%m-%d %H:%M} by {row.released_by}" if row.released_at else "open"
        )
        held_at = f"{row.held_at:%Y-%m-%d %H:%M}" + (f" by {row.held_by}" if row.held_by else "")
        table.add_row(row.automate, row.reason, held_at, released, row.detail)
    console.print(table)


@app.command("release")
@handle_errors
def release_command(
    name: str = typer.Argument(..., help="The held automate."),
    by: str | None = typer.Option(None, "--by", help="Who releases it (default: your user)."),
    as_json: bool = JsonOption,
) -> None:
    """Release a held automate: record who and when, and resume its schedules (unless its
    circuit breaker or its approval still holds them, or it is disabled)."""
    settings = load_settings()
    who = (by if by is not None else getpass.getuser()).strip()
    if not who:
        raise AutomatesError("--by: give who releases the hold (a name, not empty)")
    registry = declared_registry(settings)
    automate = registry.get(name)
    with transaction_on(database_url(settings)) as connection:
        released = release_hold(connection, name, who, HoldReason.MISFIRE)
        if not released:
            if open_hold_of(connection, name, HoldReason.PAUSED) is not None:
                raise AutomatesError(
                    f"automate {name!r} is paused, not held for review: `automates resume "
                    f"{name}`; nothing was changed"
                )
            if automate is None and not ever_held(connection, name):
                known = ", ".join(a.name for a in registry.automates)
                raise UnknownAutomateError(
                    f"no automate named {name!r} is declared or was ever held (known: {known})"
                )
            raise AutomatesError(
                f"automate {name!r} has no open hold; nothing was changed "
                "(`automates holds --all` lists past ones)"
            )
        raise_alert(connection, catalog.released(name, who))
        still = _still_held(connection, name, registry, settings.work_pool)
    schedules = _resume(settings.api_url, name, automate, still)
    result: dict[str, Any] = {
        "automate": name,
        "released": [
            {
                "id": row.id,
                "reason": row.reason,
                "held_at": row.held_at,
                "released_at": row.released_at,
                "released_by": row.released_by,
            }
            for row in released
        ],
        "schedules": schedules,
    }
    if as_json:
        emit_json(result)
    else:
        console.print(f"released {name} (by {who}); schedules {schedules}", highlight=False)


def _still_held(connection: Any, name: str, registry: Any, pool: str) -> str | None:
    """Why the schedules stay paused after a release or a resume, if something else holds
    them."""
    if name in held_automates(connection):
        return "circuit breaker not closed"
    if open_hold_of(connection, name, HoldReason.PAUSED) is not None:
        return f"paused: `automates resume {name}`"
    if open_hold_of(connection, name, HoldReason.MISFIRE) is not None:
        return f"held for review: `automates release {name}`"
    if name in schedules_held(connection, registry, pool):
        return "awaiting approval"
    return None


def _resume(api_url: str, name: str, automate: Any, still: str | None) -> str:
    if automate is None:
        return "untouched (not declared any more)"
    if still is not None:
        return f"kept paused ({still})"
    if not _set_schedules(api_url, name, active=automate.enabled):
        return "untouched (no deployment: run `automates sync`)"
    return "resumed" if automate.enabled else "kept inactive (disabled)"


def _set_schedules(api_url: str, name: str, *, active: bool) -> bool:
    """Set the automate's deployment's schedules active or not; False when it has none."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        deployment_id = deployment_of(name)
        if deployment_id is None:
            return False
        PrefectOrchestrator().set_schedules_active(deployment_id, active=active)
    return True


@app.command("pause")
@handle_errors
def pause_command(
    name: str = typer.Argument(..., help="The automate to pause."),
    reason: str = typer.Option("", "--reason", help="Why (recorded, shown by `holds`)."),
    by: str | None = typer.Option(None, "--by", help="Who pauses it (default: your user)."),
    as_json: bool = JsonOption,
) -> None:
    """Pause an automate's schedules until `automates resume`: recorded with who and why, kept
    paused by sync and reconcile (not drift), not judged by the dead-man check."""
    settings = load_settings()
    who = _who(by)
    automate = _declared(declared_registry(settings), name)
    detail = reason.strip() or "paused by an operator (no reason given)"
    with transaction_on(database_url(settings)) as connection:
        if open_hold(connection, name, HoldReason.PAUSED, detail, who) is None:
            hold = open_hold_of(connection, name, HoldReason.PAUSED)
            since = f" by {hold.held_by} at {hold.held_at:%Y-%m-%d %H:%M}" if hold else ""
            raise AutomatesError(
                f"automate {name!r} is already paused{since}: `automates resume {name}`; "
                "nothing was changed"
            )
    paused = _set_schedules(settings.api_url, automate.name, active=False)
    schedules = "paused" if paused else "none deployed yet (sync keeps them paused)"
    _announce(settings.api_url, "paused", name, {"by": who, "reason": detail})
    _report(as_json, {"automate": name, "paused_by": who, "reason": detail, "schedules": schedules})


@app.command("resume")
@handle_errors
def resume_command(
    name: str = typer.Argument(..., help="The paused automate."),
    by: str | None = typer.Option(None, "--by", help="Who resumes it (default: your user)."),
    as_json: bool = JsonOption,
) -> None:
    """Resume a paused automate's schedules (unless a hold, its breaker or its approval still
    holds them, or it is disabled)."""
    settings = load_settings()
    who = _who(by)
    registry = declared_registry(settings)
    automate = _declared(registry, name)
    with transaction_on(database_url(settings)) as connection:
        if not release_hold(connection, name, who, HoldReason.PAUSED):
            raise AutomatesError(
                f"automate {name!r} is not paused; nothing was changed (`automates holds` "
                "lists what holds automates)"
            )
        still = _still_held(connection, name, registry, settings.work_pool)
    schedules = _resume(settings.api_url, name, automate, still)
    _announce(settings.api_url, "resumed", name, {"by": who, "schedules": schedules})
    _report(as_json, {"automate": name, "resumed_by": who, "schedules": schedules})


def _announce(api_url: str, what: str, name: str, payload: dict[str, str]) -> None:
    """`automates.automate.paused` / `.resumed` in the server's Event Feed: who and why, seen
    beside the paused schedules in the UI (the store's hold is the record)."""
    failed = announce_automate(api_url, f"automates.automate.{what}", name, payload)
    if failed is not None:
        errors.print(
            f"warning: the {what} event was not sent ({masked(failed)}); the hold is recorded",
            markup=False,
            highlight=False,
        )


def _who(by: str | None) -> str:
    who = (by if by is not None else getpass.getuser()).strip()
    if not who:
        raise AutomatesError("--by: give who does it (a name, not empty); nothing was changed")
    return who


def _declared(registry: Registry, name: str) -> Automate:
    automate = registry.get(name)
    if automate is None or not automate.kind.deployable:
        known = ", ".join(a.name for a in registry.deployable)
        raise UnknownAutomateError(f"no deployed automate named {name!r} (known: {known})")
    return automate


def _report(as_json: bool, result: dict[str, Any]) -> None:
    if as_json:
        emit_json(result)
        return
    verb = "paused" if "paused_by" in result else "resumed"
    who = result.get("paused_by") or result.get("resumed_by")
    console.print(
        f"{verb} {result['automate']} (by {who}); schedules {result['schedules']}",
        highlight=False,
    )
