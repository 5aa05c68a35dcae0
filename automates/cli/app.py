"""The root of the `automates` command line: one module per group of commands."""

from __future__ import annotations

import typer

from automates.cli import (
    alert_cmds,
    approval_cmds,
    backup_cmds,
    breaker_cmds,
    browser_cmds,
    doctor_cmds,
    heartbeat_cmds,
    hold_cmds,
    import_cmds,
    journal_cmds,
    platform_cmds,
    registry_cmds,
    schedule_cmds,
    service_cmds,
    sync_cmds,
    taskrun_cmds,
    trigger_cmds,
    webhook_cmds,
)
from automates.cli.output import unexpected_errors
from automates.server.prefect_patches import apply_all

app = typer.Typer(
    name="automates",
    help="Scheduled execution for AI-agent platforms, on Prefect 3.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for group in (platform_cmds.app, sync_cmds.app, registry_cmds.app, journal_cmds.app):
    app.registered_commands.extend(group.registered_commands)
app.registered_commands.extend(doctor_cmds.app.registered_commands)  # doctor
app.add_typer(breaker_cmds.app, name="breaker")
app.registered_commands.extend(schedule_cmds.app.registered_commands)  # preview, schedules
for group in (hold_cmds.app, approval_cmds.app, trigger_cmds.app):
    app.registered_commands.extend(group.registered_commands)  # holds, release, approve, trigger
app.add_typer(browser_cmds.app, name="browser")
app.registered_commands.extend(taskrun_cmds.app.registered_commands)  # runs
app.add_typer(taskrun_cmds.task_run_app, name="task-run")
app.add_typer(taskrun_cmds.perimeter_app, name="perimeter")
app.add_typer(alert_cmds.app, name="alerts")
app.add_typer(import_cmds.app, name="import")  # import crontab
app.add_typer(heartbeat_cmds.app, name="heartbeat")
app.add_typer(backup_cmds.app, name="backup")
app.add_typer(webhook_cmds.app, name="webhook")
app.registered_commands.extend(service_cmds.app.registered_commands)  # install-service


def main() -> None:
    apply_all()
    with unexpected_errors():
        app()
