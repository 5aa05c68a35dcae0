"""`automates validate | list | show | render-prefect-yaml`: reading the registry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import prefect
import typer
from rich.markup import escape

from automates.cli.list_table import hidden_note, registry_table
from automates.cli.output import (
    JsonOption,
    console,
    emit_json,
    errors,
    handle_errors,
    load_settings,
)
from automates.cli.show_page import next_fires, show_page
from automates.errors import UnknownAutomateError
from automates.overview import gather_status, select
from automates.registry.entrypoints import static_warnings
from automates.server.prefect_yaml import render
from automates.store.declared import declared_registry
from automates.sync import validated, validated_registry

app = typer.Typer()


@app.command()
@handle_errors
def validate(as_json: bool = JsonOption) -> None:
    """Check every declaration, entrypoint file and alert route; change nothing.

    Routes whose secret is in a Prefect Secret block are checked by `sync`, which reaches the
    API; routes reading an environment variable are checked here. A disabled script automate
    whose command is missing is valid (it never runs; sync deploys it paused), and warned of."""
    settings = load_settings()
    registry, routing = validated(settings, secrets=True, blocks=False)
    warnings = static_warnings(registry, settings.project_root)
    routes = len(routing.all_routes)
    if as_json:
        emit_json(
            {
                "valid": True,
                "automates": len(registry.automates),
                "routes": routes,
                "warnings": [w.as_dict() for w in warnings],
            }
        )
        return
    plural = "" if routes == 1 else "s"
    console.print(
        f"[green]valid[/green]: {len(registry.automates)} automates, {routes} route{plural}"
    )
    for warning in warnings:
        console.print(
            f"[yellow]warning[/yellow]: {escape(str(warning))} (disabled: deployed paused, "
            "never run; reconcile reports it broken)",
            highlight=False,
        )


@app.command("list")
@handle_errors
def list_(
    kind: str | None = typer.Option(None, help="Only this kind (recurring, oneshot, ...)."),
    caste: str | None = typer.Option(None, help="Only this caste."),
    family: str | None = typer.Option(None, help="Only this family."),
    as_json: bool = JsonOption,
) -> None:
    """The registry with next fire time, last run state and run counts from the server."""
    settings = load_settings()
    chosen = select(declared_registry(settings), kind=kind, caste=caste, family=family)
    statuses = asyncio.run(gather_status(settings, chosen))
    if as_json:
        emit_json([s.as_dict() for s in statuses])
        return
    table, hidden = registry_table(statuses, console.width)
    console.print(table)
    note = hidden_note(hidden)
    if note:
        console.print(note, style="dim", highlight=False)


@app.command()
@handle_errors
def show(name: str, as_json: bool = JsonOption) -> None:
    """One automate: its declaration, deployment, next fire times and run history."""
    settings = load_settings()
    registry = declared_registry(settings)
    automate = registry.get(name)
    if automate is None:
        known = ", ".join(a.name for a in registry.automates)
        raise UnknownAutomateError(f"no automate named {name!r} is declared (known: {known})")
    [status] = asyncio.run(gather_status(settings, [automate], next_count=5))
    if as_json:
        emit_json(status.as_dict())
        return
    now = datetime.now(UTC)
    page = show_page(
        status,
        fires=asyncio.run(next_fires(automate, now)),
        default_pool=settings.work_pool,
        project_root=settings.project_root,
        now=now,
    )
    console.print(page, highlight=False)


@app.command("render-prefect-yaml")
@handle_errors
def render_prefect_yaml(
    check: bool = typer.Option(False, "--check", help="Exit 1 if prefect.yaml is out of date."),
) -> None:
    """Regenerate prefect.yaml from the registry (for `prefect deploy --all`)."""
    settings = load_settings()
    text = render(validated_registry(settings), settings.work_pool, prefect.__version__)
    target = settings.project_root / "prefect.yaml"
    if check:
        if not target.exists() or target.read_text() != text:
            errors.print("prefect.yaml is out of date: run `automates render-prefect-yaml`")
            raise typer.Exit(1)
        console.print("prefect.yaml is up to date")
        return
    target.write_text(text)
    console.print(f"wrote {target}")
