"""`automates up | down | status | env`: the local layer's lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.platform import lifecycle

app = typer.Typer()


@app.command()
@handle_errors
def up(
    no_sync: bool = typer.Option(False, "--no-sync", help="Start everything but do not sync."),
    as_json: bool = JsonOption,
) -> None:
    """Start the embedded PostgreSQL, the Prefect server, the workers and the alerts under
    supervision (each restarted if it dies); sync the registry."""
    settings = load_settings()
    step = None if as_json else (lambda message: console.print(f"[dim]·[/dim] {message}"))
    report = lifecycle.up(settings, run_sync=not no_sync, step=step)
    if as_json:
        emit_json(report.as_dict())
        return
    if report.sync is not None:
        s = report.sync
        console.print(
            f"[dim]·[/dim] registry: {len(s.created)} created, {len(s.updated)} updated, "
            f"{len(s.unchanged)} unchanged"
        )
    # One line each, never wrapped by rich (which would leave a dangling "; " at the break):
    # the terminal folds a long one.
    started, reused = ", ".join(report.started), ", ".join(report.reused)
    summary = f"started {started}" if started else "nothing to start"
    console.print(f"[green]up[/green]: {summary}", highlight=False, soft_wrap=True)
    if reused:
        console.print(f"already running: {reused}", highlight=False, soft_wrap=True)
    console.print(f"Prefect UI: [bold]{report.ui_url}[/bold]", soft_wrap=True)
    console.print(
        f"Use the Prefect CLI against it: export PREFECT_API_URL={report.api_url}", soft_wrap=True
    )
    # A newcomer's next steps (the README's first run).
    console.print("Next:", highlight=False)
    for command, what in NEXT_STEPS:
        console.print(f"  {command}", highlight=False, soft_wrap=True)
        console.print(f"      {what}", style="dim", highlight=False, soft_wrap=True)


NEXT_STEPS = (
    ("source .venv/bin/activate", "the `automates` and `prefect` commands in this shell"),
    ("automates list", "every declared automate, its schedules and its next run"),
    (
        'eval "$(automates env)" && prefect deployment run registry-report/registry-report --watch',
        "run one now, as the UI's Run button does, and watch it finish",
    ),
    ("automates doctor", "check the layer: server, scheduler, workers, store, blocks, routes"),
)


@app.command()
@handle_errors
def down(as_json: bool = JsonOption) -> None:
    """Stop the workers, the server and the embedded PostgreSQL (data is kept)."""
    stopped = lifecycle.down(load_settings())
    if as_json:
        emit_json({"stopped": stopped})
    else:
        console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
@handle_errors
def status(as_json: bool = JsonOption) -> None:
    """supervisord and each process it runs (state, pid, uptime, restarts), whether the API
    can serve, and every work pool's workers as the server sees them; exit 1 if not all is
    well (a crash loop, a dead supervisor, a process that should run and does not)."""
    report = lifecycle.status(load_settings())
    if as_json:
        emit_json(report)
    else:
        colours = {"running": "green", "starting": "yellow", "backoff": "yellow"}
        api = "[green]ready[/green]" if report["api_ready"] else f"[red]{report['api']}[/red]"
        console.print(f"api: {api} ({report['api_url']})", highlight=False)
        console.print(f"ui: {report['ui_url']}", highlight=False)
        console.print(f"database: {report['database']}", highlight=False)
        for name, entry in report["components"].items():
            state = entry["state"]
            colour = colours.get(state, "dim" if state == "stopped" else "red")
            facts = [f"pid {entry['pid']}"] if entry["pid"] else []
            if entry["uptime_seconds"] is not None:
                facts.append(f"up {_duration(entry['uptime_seconds'])}")
            if entry["restarts"]:
                facts.append(f"{entry['restarts']} restart(s)")
            shown = f" ({', '.join(facts)})" if facts else ""
            console.print(f"{name}: [{colour}]{state}[/{colour}]{shown}", highlight=False)
        if report["workers"]:
            console.print("workers (as the server sees them):")
        for pool, found in report["workers"].items():
            live = "[green]live[/green]" if found["live"] else "[yellow]no live worker[/yellow]"
            console.print(f"  pool {pool}: {live}", highlight=False)
            for worker in found["workers"]:
                beat = worker["last_heartbeat"]
                seen = f"{_utc(beat)} ({worker['age_seconds']} s ago)" if beat else "never"
                console.print(
                    f"    {worker['name']}: {worker['status']}, last heartbeat {seen}",
                    highlight=False,
                )
        for warning in report["warnings"]:
            console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        for problem in report["problems"]:
            console.print(f"[red]problem:[/red] {problem}", highlight=False)
    if not report["ok"]:
        raise typer.Exit(1)  # ran, and found the layer not serving


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _utc(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command()
@handle_errors
def env() -> None:
    """Print the shell exports that point the Prefect CLI at this layer's server."""
    settings = load_settings()
    console.print(f"export PREFECT_API_URL={settings.api_url}", highlight=False)
