"""`automates browser enqueue | get | list | deploy | encrypt-payloads`: browser jobs
(docs/browser.md)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import typer
from rich.table import Table

from automates.browser.deploy import CodeSource, ensure_browser_deployment
from automates.browser.enqueue import BrowserJob, enqueue_job, get_job, list_jobs
from automates.browser.payload_secrets import reseal_payloads
from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings

app = typer.Typer(help="Browser jobs run by the residential workers.")


def _show(job: BrowserJob, as_json: bool) -> None:
    data = job.model_dump(mode="json")
    if as_json:
        emit_json(data)
        return
    table = Table("field", "value", show_header=False)
    for name, value in data.items():
        table.add_row(name, "-" if value is None else str(value))
    console.print(table)


@app.command()
@handle_errors
def enqueue(
    kind: str,
    payload: str = typer.Option(..., "--payload", help="The job's payload, a JSON object."),
    timeout: int | None = typer.Option(None, "--timeout", help="Seconds before the job is killed."),
    as_json: bool = JsonOption,
) -> None:
    """Validate and queue one job of KIND; unknown kinds and bad payloads create nothing."""
    _show(enqueue_job(load_settings(), kind, payload, timeout), as_json)


@app.command()
@handle_errors
def get(job: str, as_json: bool = JsonOption) -> None:
    """One job: status, host, attempts, times, error and result."""
    _show(get_job(load_settings(), job), as_json)


@app.command("list")
@handle_errors
def list_(
    status: str | None = typer.Option(
        None, "--status", help="Only jobs of this status: queued, running, done, failed, lost."
    ),
    limit: int = typer.Option(50, "--limit", help="At most this many (1 to 1000)."),
    as_json: bool = JsonOption,
) -> None:
    """The newest jobs first: status, host, times and error (never payloads or results)."""
    found = list_jobs(load_settings(), status, limit)
    if as_json:
        emit_json([job.model_dump(mode="json") for job in found])
        return
    table = Table("job", "kind", "status", "host", "created", "finished", "error")
    for job in found:
        table.add_row(
            str(job.id),
            job.kind,
            job.status,
            job.host or "-",
            f"{job.created_at:%Y-%m-%d %H:%M:%S}",
            f"{job.finished_at:%Y-%m-%d %H:%M:%S}" if job.finished_at else "-",
            (job.error or "-")[:80],
        )
    console.print(table)


@app.command()
@handle_errors
def deploy(
    git_repository: str | None = typer.Option(
        None, help="Workers clone this repository before each run (default: this checkout)."
    ),
    git_branch: str = typer.Option("main", help="The branch they clone."),
    as_json: bool = JsonOption,
) -> None:
    """Create or update the residential pool and the browser-job deployment."""
    settings = load_settings()
    source = (
        CodeSource(git_repository=git_repository, git_branch=git_branch)
        if git_repository
        else CodeSource(directory=str(settings.project_root))
    )
    deployment_id = asyncio.run(ensure_browser_deployment(settings, source))
    if as_json:
        emit_json({"deployment_id": deployment_id, "pool": settings.browser.pool})
    else:
        console.print(f"browser-job deployment {deployment_id} on pool {settings.browser.pool}")


@app.command("encrypt-payloads")
@handle_errors
def encrypt_payloads(as_json: bool = JsonOption) -> None:
    """Seal every stored payload secret with the newest key: plain-text ones (jobs enqueued
    before sealing existed) and ones sealed with an older key (after a rotation). Exit 1 when
    some cannot be read with the keys given."""
    done = reseal_payloads(load_settings())
    if as_json:
        emit_json(asdict(done))
    else:
        console.print(
            f"{done.encrypted} job(s) sealed, {done.rotated} resealed with the newest key, "
            f"{done.unchanged} unchanged (keys: {done.key})"
        )
        if done.unreadable:
            console.print(f"not readable with these keys: {', '.join(done.unreadable)}")
        if done.unknown_kind:
            console.print(f"of a kind this code does not know: {', '.join(done.unknown_kind)}")
    if done.unreadable:
        raise typer.Exit(1)
