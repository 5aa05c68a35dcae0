"""`automates doctor`: check a running layer; each problem named with its fix."""

from __future__ import annotations

import typer

from automates.cli.output import (
    JsonOption,
    console,
    emit_json,
    handle_errors,
    load_settings,
    masked,
)
from automates.platform.doctor import doctor as run_doctor

app = typer.Typer()

COLOURS = {"ok": "green", "problem": "red", "not checked": "yellow"}


@app.command()
@handle_errors
def doctor(as_json: bool = JsonOption) -> None:
    """Check the layer: the server answers, its scheduler creates runs, each work pool with
    deployments has a live worker, the store is migrated, the blocks sync saves are there, and
    the alert routes are reachable. One line per check, with the fix of each problem; exit 1
    if any problem, 0 if none."""
    checks = run_doctor(load_settings())
    # Every text shown passes the CLI's mask too: no detail may carry a credential.
    entries = [
        {
            key: masked(value) if isinstance(value, str) else value
            for key, value in c.as_dict().items()
        }
        for c in checks
    ]
    if as_json:
        emit_json(entries)
    else:
        width = max(len(c.name) for c in checks)
        for check, entry in zip(checks, entries, strict=True):
            colour = COLOURS[check.status]
            console.print(
                f"{check.name:<{width}}  [{colour}]{check.status}[/{colour}]: {entry['detail']}",
                highlight=False,
                soft_wrap=True,
            )
            if entry["fix"]:
                console.print(
                    f"{'':<{width}}  fix: {entry['fix']}", highlight=False, soft_wrap=True
                )
    if any(c.ok is False for c in checks):
        raise typer.Exit(1)  # ran, and found a problem
