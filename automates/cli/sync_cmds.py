"""`automates sync | reconcile`: declarations to the server, and the drift between them."""

from __future__ import annotations

import asyncio

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.reconcile import reconcile as run_reconcile
from automates.store.database import database_url
from automates.store.declared import declared_in, declared_registry
from automates.store.engine import make_engine, migrate, transaction
from automates.store.held import schedules_held
from automates.sync import sync as run_sync

app = typer.Typer()


@app.command()
@handle_errors
def sync(
    prune: bool = typer.Option(
        False, "--prune", help="Delete deployments this tool created that are no longer declared."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Sync every declaration to the Prefect server, the registry table and the store block."""
    settings = load_settings()
    url = database_url(settings)
    if as_json or not console.is_terminal:
        report = asyncio.run(run_sync(settings, url, prune=prune))
    else:
        total = len(declared_registry(settings).deployable)
        with Progress(
            TextColumn("syncing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("", total=total)

            def advance(action: str, name: str) -> None:
                if action != "pruned":
                    bar.update(task, advance=1, description=f"{action} {name}")

            report = asyncio.run(run_sync(settings, url, prune=prune, progress=advance))
    if as_json:
        emit_json(report.as_dict())
        return
    for name in report.created:
        console.print(f"[green]+[/green] {name}")
    for name, fields in report.updated.items():
        console.print(f"[yellow]~[/yellow] {name} ({', '.join(fields)})")
    for name in report.pruned:
        console.print(f"[red]-[/red] {name} (pruned)")
    for name in report.services_started:
        console.print(f"[green]▶[/green] service {name} started")
    for name in report.services_stopped:
        console.print(f"[red]■[/red] service {name} stopped (disabled)")
    kept = [n for n in report.undeclared if n not in report.pruned]
    for name in kept:
        console.print(
            f"[magenta]?[/magenta] {name} is deployed but declared nowhere "
            "(`sync --prune` removes it if this tool created it)"
        )
    console.print(
        f"{len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.pruned)} pruned; "
        f"registry rows written: {len(report.registry_written)}"
    )


@app.command()
@handle_errors
def reconcile(as_json: bool = JsonOption) -> None:
    """Declared vs deployed vs importable. Exit 1 if anything drifted."""
    settings = load_settings()
    engine = make_engine(database_url(settings))
    try:
        migrate(engine)  # the breakers table must exist to be read
        with transaction(engine) as connection:
            registry = declared_in(connection, settings)
            held = schedules_held(connection, registry, settings.work_pool)
    finally:
        engine.dispose()
    report = asyncio.run(run_reconcile(settings, registry=registry, held=held))
    if as_json:
        emit_json(report.as_dict())
    elif not report.has_drift:
        console.print(
            f"[green]no drift[/green]: {report.declared} declared, {report.deployed} deployed, "
            f"{report.importable} importable"
        )
    else:
        table = Table("kind", "automate / deployment", "detail", title="Registry drift")
        for drift in report.drifts:
            table.add_row(drift.kind.value, drift.subject, drift.detail)
        console.print(table)
        console.print(
            f"{len(report.drifts)} drift(s): {report.declared} declared, "
            f"{report.deployed} deployed, {report.importable} importable"
        )
    if report.has_drift:
        raise typer.Exit(1)
