"""`automates logs NAME | crashes | archive-crashes`: what the guard journaled."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import typer
from rich.table import Table
from sqlalchemy import Connection

from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.errors import SettingsError
from automates.store.crash_archive import archive_crashes
from automates.store.database import database_url
from automates.store.engine import make_engine, transaction_on
from automates.store.journals import recent_crashes, recent_executions

app = typer.Typer()
ArchiveFileOption = typer.Option(
    ..., "--to", help="The archive file to write (.jsonl.gz; must be new)."
)

Row = TypeVar("Row")


def _read(
    reader: Callable[[Connection, str | None, int], list[Row]], automate: str | None, limit: int
) -> list[Row]:
    with transaction_on(database_url(load_settings())) as connection:
        return reader(connection, automate, limit)


@app.command()
@handle_errors
def logs(
    name: str,
    limit: int = typer.Option(20, min=1, help="How many runs, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """Recent guarded runs of an automate: who asked, outcome, duration, attempts, fixes."""
    runs = _read(recent_executions, name, limit)
    crashes = _read(recent_crashes, name, 200)
    fixes: dict[UUID, list[str]] = {}
    for crash in crashes:
        if crash.fix_applied:
            fixes.setdefault(crash.flow_run_id, []).append(crash.fix_applied)
    if as_json:
        emit_json(
            [{**run.as_dict(), "fixes_applied": fixes.get(run.flow_run_id, [])} for run in runs]
        )
        return
    table = Table(
        "finished", "asked by", "outcome", "duration", "attempts", "exit", "fixes", "message"
    )
    for run in runs:
        table.add_row(
            f"{run.finished_at:%Y-%m-%d %H:%M:%S}",
            run.principal or "-",
            run.outcome,
            f"{run.duration_seconds:.1f} s",
            str(run.attempts),
            "-" if run.exit_code is None else str(run.exit_code),
            ", ".join(fixes.get(run.flow_run_id, [])) or "-",
            (run.message or "")[:60],
        )
    console.print(table if runs else f"no journaled run of {name!r} yet")


@app.command()
@handle_errors
def crashes(
    name: str | None = typer.Argument(None, help="Only this automate."),
    limit: int = typer.Option(50, min=1, help="How many rows, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """The crash journal: every failed attempt, its error, fix and retry outcome."""
    rows = _read(recent_crashes, name, limit)
    if as_json:
        emit_json([row.as_dict() for row in rows])
        return
    table = Table("when", "automate", "attempt", "error", "fix", "retry")
    for row in rows:
        table.add_row(
            f"{row.occurred_at:%Y-%m-%d %H:%M:%S}",
            row.automate,
            str(row.attempt),
            f"{row.error_class}: {row.message[:60]}",
            row.fix_applied or "-",
            row.retry_outcome,
        )
    console.print(table if rows else "the crash journal is empty")


@app.command("archive-crashes")
@handle_errors
def archive(
    before: str = typer.Option(..., "--before", help="Crashes before this date (YYYY-MM-DD, UTC)."),
    to: Path = ArchiveFileOption,
    url: str | None = typer.Option(
        None,
        "--database-url",
        help="A superuser connection to the layer's database (the layer's own role may not "
        "delete crashes); default: the layer's.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Move old crashes out of the append-only crash journal into a file, checked and whole."""
    try:
        cutoff = datetime.strptime(before, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise SettingsError(f"--before {before!r}: give a date as YYYY-MM-DD") from None
    engine = make_engine(url or database_url(load_settings()))
    try:
        archived = archive_crashes(engine, cutoff, to)
    finally:
        engine.dispose()
    if as_json:
        emit_json(archived.as_dict())
    else:
        console.print(
            f"archived {archived.rows} crashes (before {before}) into {archived.file} "
            f"(sha256 {archived.sha256[:16]}...)"
        )
