"""The root of the `automates` command line: one module per group of commands."""

from __future__ import annotations

import typer

from automates.cli import breaker_cmds, journal_cmds, platform_cmds, registry_cmds, sync_cmds
from automates.platform.prefect_patches import apply_all

app = typer.Typer(
    name="automates",
    help="Scheduled execution for AI-agent platforms, on Prefect 3.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for group in (platform_cmds.app, sync_cmds.app, registry_cmds.app, journal_cmds.app):
    app.registered_commands.extend(group.registered_commands)
app.add_typer(breaker_cmds.app, name="breaker")


def main() -> None:
    apply_all()
    app()
