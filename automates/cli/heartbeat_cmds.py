"""`automates heartbeat status|enable|disable|interval|run AGENT`: agents' heartbeats
(docs/agents.md, "Heartbeats")."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.errors import HeartbeatError
from automates.routines import heartbeats
from automates.settings import Settings
from automates.store.database import database_url
from automates.store.engine import make_engine

app = typer.Typer(help="Agents' heartbeats: a periodic check-in with a checklist.")
AgentArgument = typer.Argument(..., help="The agent.")


def _with_engine(work: Callable[[Settings, Engine], Any]) -> Any:
    settings = load_settings()
    engine = make_engine(database_url(settings))
    try:
        return work(settings, engine)
    finally:
        engine.dispose()


def _configure(agent: str, changes: dict[str, Any]) -> dict[str, Any]:
    return _with_engine(
        lambda settings, engine: asyncio.run(heartbeats.configure(settings, engine, agent, changes))
    )


def _active_hours(active: str | None, timezone: str | None) -> dict[str, Any] | None:
    if active is None:
        if timezone is not None:
            raise HeartbeatError("--timezone goes with --active START-END; nothing was changed")
        return None
    start, sep, end = active.partition("-")
    if not sep:
        raise HeartbeatError(f"--active {active!r}: give START-END, e.g. 08:00-22:00")
    return {"start": start.strip(), "end": end.strip(), "timezone": timezone or "UTC"}


@app.command("enable")
@handle_errors
def enable(
    agent: str = AgentArgument,
    checklist: str | None = typer.Option(None, "--checklist", help="The checklist, inline."),
    checklist_file: str | None = typer.Option(
        None, "--checklist-file", help="A HEARTBEAT.md-style file, relative to the project root."
    ),
    every: str | None = typer.Option(None, "--every", help="How often (default 30m)."),
    active: str | None = typer.Option(
        None, "--active", help="Active hours, START-END (e.g. 08:00-22:00); outside, skipped."
    ),
    timezone: str | None = typer.Option(None, "--timezone", help="Of --active (default UTC)."),
    template: str | None = typer.Option(None, "--template", help="Default: heartbeat."),
    perimeter: str | None = typer.Option(None, "--perimeter", help="Default: platform."),
    as_json: bool = JsonOption,
) -> None:
    """Configure and enable an agent's heartbeat (fields not given keep their value)."""
    changes: dict[str, Any] = {"enabled": True}
    if checklist is not None or checklist_file is not None:
        changes.update(checklist=checklist, checklist_file=checklist_file)
    hours = _active_hours(active, timezone)
    given = {"every": every, "active_hours": hours, "template": template, "perimeter": perimeter}
    changes.update({k: v for k, v in given.items() if v is not None})
    _show(_configure(agent, changes), as_json)


@app.command("disable")
@handle_errors
def disable(agent: str = AgentArgument, as_json: bool = JsonOption) -> None:
    """Disable an agent's heartbeat: its schedule paused, its configuration kept."""
    _show(_configure(agent, {"enabled": False}), as_json)


@app.command("interval")
@handle_errors
def interval(
    agent: str = AgentArgument,
    every: str = typer.Argument(..., help="How often: 30m, 1h, 2h30m."),
    as_json: bool = JsonOption,
) -> None:
    """Change how often an agent's heartbeat runs."""
    _show(_configure(agent, {"every": every}), as_json)


@app.command("run")
@handle_errors
def run(agent: str = AgentArgument, as_json: bool = JsonOption) -> None:
    """One check-in now, through the guard and the same checks as a scheduled one."""
    principal = f"operator:{getpass.getuser()}"
    started = _with_engine(
        lambda settings, engine: asyncio.run(heartbeats.run_now(settings, engine, agent, principal))
    )
    if as_json:
        emit_json(started)
    else:
        console.print(f"started {started['flow_run_name']} ({started['flow_run_id']})")


@app.command("status")
@handle_errors
def status(
    agent: str | None = typer.Argument(None, help="One agent (default: all)."),
    as_json: bool = JsonOption,
) -> None:
    """Each heartbeat: its configuration and latest check-ins."""
    _show(_with_engine(lambda settings, engine: heartbeats.status(engine, agent)), as_json)


def _show(found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(found)
        return
    if not found["heartbeats"]:
        console.print("no heartbeat configured: `automates heartbeat enable AGENT --checklist ...`")
        return
    table = Table("agent", "enabled", "every", "active hours", "checklist", "last check-in")
    for heartbeat in found["heartbeats"]:
        hours = heartbeat["active_hours"]
        window = f"{hours['start']}-{hours['end']} {hours['timezone']}" if hours else "all day"
        recent = heartbeat["recent"]
        last = f"{recent[0]['outcome']}: {recent[0]['message'] or ''}"[:80] if recent else "none"
        source = heartbeat["checklist_file"] or "inline"
        table.add_row(
            heartbeat["agent"], str(heartbeat["enabled"]), heartbeat["every"], window, source, last
        )
    console.print(table)
