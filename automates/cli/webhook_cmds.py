"""`automates webhook add|list|rotate|revoke`: the webhook's callers, one named token each
(docs/scheduling.md, "Triggers beyond time")."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.settings import Settings
from automates.store.database import database_url
from automates.store.engine import make_engine
from automates.store.webhook_callers import WebhookCaller
from automates.webhook import callers
from automates.webhook.token import SETTING_CALLER, setting_token

app = typer.Typer(help="The webhook's callers: one named, revocable token each.")
NameArgument = typer.Argument(..., help="The caller's name (a slug), e.g. github or billing.")
AutomateOption = typer.Option(
    None, "--automate", help="An automate it may start (repeatable; default: every webhook one)."
)


@contextmanager
def _store() -> Iterator[tuple[Settings, Engine]]:
    settings = load_settings()
    engine = make_engine(database_url(settings))
    try:
        yield settings, engine
    finally:
        engine.dispose()


@app.command("add")
@handle_errors
def add(
    name: str = NameArgument,
    automates: list[str] | None = AutomateOption,
    as_json: bool = JsonOption,
) -> None:
    """A new caller and its token, shown this once (the store keeps only its digest)."""
    with _store() as (settings, engine):
        caller, token = callers.add(settings, engine, name, automates or [], getpass.getuser())
    _show_token(caller, token, as_json)


@app.command("rotate")
@handle_errors
def rotate(name: str = NameArgument, as_json: bool = JsonOption) -> None:
    """A new token for a caller: the old one stops at once (a revoked caller is restored)."""
    with _store() as (_, engine):
        caller, token = callers.rotate(engine, name)
    _show_token(caller, token, as_json)


@app.command("revoke")
@handle_errors
def revoke(name: str = NameArgument, as_json: bool = JsonOption) -> None:
    """Stop a caller's token at once; the caller stays listed, revoked."""
    with _store() as (_, engine):
        caller = callers.revoke(engine, name, getpass.getuser())
    if as_json:
        emit_json(_described(caller))
    else:
        console.print(f"revoked webhook caller {caller.name}: its token is refused from now on")


@app.command("list")
@handle_errors
def list_callers(as_json: bool = JsonOption) -> None:
    """Every caller: what it may start, when it was last used, whether it is revoked."""
    with _store() as (settings, engine):
        found = [_described(caller) for caller in callers.callers(engine)]
    if setting_token(settings) is not None:
        found.insert(0, _setting_caller())
    if as_json:
        emit_json({"callers": found})
        return
    if not found:
        console.print("no webhook caller: `automates webhook add NAME` makes one")
        return
    table = Table("caller", "may start", "created", "last used", "state")
    for caller in found:
        table.add_row(
            caller["name"],
            ", ".join(caller["automates"] or ["every webhook automate"]),
            _moment(caller["created_at"]) + f" by {caller['created_by']}",
            _moment(caller["last_used_at"]),
            caller["state"],
        )
    console.print(table)


def _described(caller: WebhookCaller) -> dict[str, Any]:
    state = "active" if caller.active else f"revoked {_moment(caller.revoked_at)}"
    return {**caller.as_dict(), "state": state, "principal": f"webhook:{caller.name}"}


def _setting_caller() -> dict[str, Any]:
    """The caller of AUTOMATES_WEBHOOK_TOKEN, which is not in the store."""
    return {
        "name": SETTING_CALLER,
        "automates": None,
        "created_by": "AUTOMATES_WEBHOOK_TOKEN",
        "created_at": None,
        "rotated_at": None,
        "last_used_at": None,
        "revoked_at": None,
        "revoked_by": None,
        "state": "active (AUTOMATES_WEBHOOK_TOKEN; unset it to revoke)",
        "principal": f"webhook:{SETTING_CALLER}",
    }


def _show_token(caller: WebhookCaller, token: str, as_json: bool) -> None:
    if as_json:
        emit_json({**_described(caller), "token": token})
        return
    console.print(
        f"webhook caller {caller.name}: send `Authorization: Bearer <token>`; the token is "
        "shown this once:"
    )
    console.print(token, highlight=False, soft_wrap=True)


def _moment(value: Any) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"
