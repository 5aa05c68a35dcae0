"""`automates task-run start|show|tail|cancel`, `automates runs`, `automates perimeter set|list`."""

from __future__ import annotations

import asyncio
import getpass
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import typer
from rich.table import Table
from sqlalchemy import Engine

from automates import principal
from automates.agents.task_run_request import TASK_RUN_DEPLOYMENT, flow_parameters, task_run_request
from automates.agents.taskruns import new_task_run
from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.errors import TaskRunRequestError, UnknownTaskRunError, field_problems
from automates.server.client import prefect_client
from automates.settings import Settings
from automates.states import TaskRunStatus
from automates.store import taskruns as sql
from automates.store.database import database_url
from automates.store.engine import make_engine, transaction
from automates.store.rows import StoredRow
from automates.store.schema import TASK_RUN_ENDED

task_run_app = typer.Typer(help="Agent task runs: the LLM CLI with scoped permissions.")
perimeter_app = typer.Typer(help="Perimeters: the platform and its tenants, with their context.")
app = typer.Typer()  # top-level commands (runs)


def _engine(settings: Settings) -> Engine:
    return make_engine(database_url(settings))


def _plain(row: StoredRow) -> dict[str, Any]:
    """The row's columns as `--json` prints them (dollars as numbers)."""
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.as_dict().items()}


def _task_run(engine: Engine, task_run_id: str) -> sql.TaskRun:
    try:
        key = UUID(task_run_id)
    except ValueError:
        raise UnknownTaskRunError(f"{task_run_id!r} is not a task run id (a UUID)") from None
    with transaction(engine) as connection:
        row = sql.read_task_run(connection, key)
    if row is None:
        raise UnknownTaskRunError(f"no agent task run {task_run_id}")
    return row


@task_run_app.command("start")
@handle_errors
def start(
    codename: str = typer.Option(..., help="Short slug naming the task."),
    agent: str = typer.Option(..., help="The agent the task is delegated to."),
    prompt: str = typer.Option(..., help="What the agent is asked to do."),
    template: str = typer.Option(..., help="Permission template: research, audit, code, ..."),
    perimeter: str = typer.Option("platform", help="platform or a tenant id."),
    exit_criteria: str | None = typer.Option(None, help="When the agent should stop."),
    model: str | None = typer.Option(None, help="Model override for this run."),
    timeout: int | None = typer.Option(None, help="Seconds (default: the setting)."),
    budget: float | None = typer.Option(None, help="Per-run budget in dollars."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Record the command; start nothing."),
    wait: bool = typer.Option(
        False, "--wait", help="Wait for the task run to end; exit 1 unless it completed."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Request an agent task run; it starts on the agent dispatcher within a second."""
    settings = load_settings()
    request = task_run_request(
        {
            "codename": codename,
            "agent": agent,
            "prompt": prompt,
            "template": template,
            "perimeter": perimeter,
            "exit_criteria": exit_criteria,
            "model": model,
            "timeout_seconds": timeout,
            "max_budget_usd": budget,
            "dry_run": dry_run,
        }
    )
    engine = _engine(settings)
    try:
        task_run_id = new_task_run(engine, request, settings)
        parameters = flow_parameters(request, task_run_id)
        flow_run_id = asyncio.run(_create_flow_run(settings, parameters))
        with transaction(engine) as connection:
            sql.update_task_run(connection, task_run_id, flow_run_id=flow_run_id)
        row = _task_run(engine, str(task_run_id))
        if wait:
            row = _wait(engine, str(task_run_id))
    finally:
        engine.dispose()
    if as_json:
        emit_json(_plain(row))
    else:
        console.print(f"task run {task_run_id} ({row.status}), flow run {flow_run_id}")
    if wait and row.status != TaskRunStatus.COMPLETED:
        raise typer.Exit(1)  # waited, and it ended otherwise: failed, timed out, over budget


async def _create_flow_run(settings: Settings, parameters: dict[str, Any]) -> UUID:
    async with prefect_client(settings.api_url) as client:
        try:
            deployment = await client.read_deployment_by_name(TASK_RUN_DEPLOYMENT)
        except Exception as error:
            raise TaskRunRequestError(
                f"deployment {TASK_RUN_DEPLOYMENT} is not on the server (run `automates sync`): "
                f"{error}"
            ) from None
        flow_run = await client.create_flow_run_from_deployment(
            deployment.id,
            parameters=parameters,
            tags=["task-run", principal.tag(principal.operator(getpass.getuser()))],
        )
        return flow_run.id


def _wait(engine: Engine, task_run_id: str, poll_seconds: float = 0.5) -> sql.TaskRun:
    while True:
        row = _task_run(engine, task_run_id)
        if row.status in TASK_RUN_ENDED:
            return row
        time.sleep(poll_seconds)


@task_run_app.command("show")
@handle_errors
def show(task_run_id: str, as_json: bool = JsonOption) -> None:
    """One task run: status, command, exit code, tokens, cost, error."""
    engine = _engine(load_settings())
    try:
        row = _plain(_task_run(engine, task_run_id))
    finally:
        engine.dispose()
    if as_json:
        emit_json(row)
        return
    table = Table("field", "value", show_header=False)
    for key, value in row.items():
        if key == "command" and value:
            value = " ".join(value)
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)


@task_run_app.command("tail")
@handle_errors
def tail(
    task_run_id: str,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
    as_json: bool = JsonOption,
) -> None:
    """The task run's output, as streamed from the CLI (JSON: one object per line)."""
    engine = _engine(load_settings())
    last = 0
    try:
        _task_run(engine, task_run_id)
        while True:
            with transaction(engine) as connection:
                lines = sql.output_after(connection, UUID(task_run_id), last)
                status = sql.read_task_run(connection, UUID(task_run_id)).status  # type: ignore[union-attr]
            for line in lines:
                last = line.id
                if as_json:
                    emit_json({"attempt": line.attempt, "at": line.at, "line": line.line})
                else:
                    console.print(line.line, markup=False, highlight=False, soft_wrap=True)
            if not follow or (status in TASK_RUN_ENDED and not lines):
                return
            if not lines:
                time.sleep(0.5)
    finally:
        engine.dispose()


@task_run_app.command("cancel")
@handle_errors
def cancel(task_run_id: str, as_json: bool = JsonOption) -> None:
    """Cancel a task run: Prefect's cancellation; the run terminates its CLI's process group."""
    settings = load_settings()
    engine = _engine(settings)
    try:
        row = _task_run(engine, task_run_id)
        if row.status in TASK_RUN_ENDED:
            result = {"task_run_id": task_run_id, "cancelled": False, "status": row.status}
        elif row.flow_run_id is None:
            _cancel_pending(engine, task_run_id, "cancelled before a flow run was created")
            result = {"task_run_id": task_run_id, "cancelled": True, "status": "cancelled"}
        else:
            asyncio.run(_cancel_flow_run(settings, row.flow_run_id))
            # Not started yet: it never will (a claim refuses an ended row). Started: the run
            # sees its Cancelling state and stops its CLI itself.
            stopped = _cancel_pending(engine, task_run_id, "cancelled before it started")
            status = "cancelled" if stopped else "cancelling"
            result = {"task_run_id": task_run_id, "cancelled": True, "status": status}
    finally:
        engine.dispose()
    if as_json:
        emit_json(result)
        return
    console.print(f"task run {task_run_id}: {result['status']}")


def _cancel_pending(engine: Engine, task_run_id: str, reason: str) -> bool:
    with transaction(engine) as connection:
        return sql.cancel_pending(connection, UUID(task_run_id), reason)


async def _cancel_flow_run(settings: Settings, flow_run_id: UUID) -> None:
    from prefect.states import Cancelling

    async with prefect_client(settings.api_url) as client:
        await client.set_flow_run_state(
            flow_run_id, Cancelling(message="cancelled with `automates task-run cancel`")
        )


@app.command("runs")
@handle_errors
def runs(
    limit: int = typer.Option(20, min=1, help="How many runs, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """Recent runs: perimeter, trigger, source, title, status, task runs."""
    engine = _engine(load_settings())
    try:
        with transaction(engine) as connection:
            rows = sql.recent_runs(connection, limit)
    finally:
        engine.dispose()
    if as_json:
        emit_json([_plain(row) for row in rows])
        return
    table = Table("created", "perimeter", "trigger", "source", "title", "status", "task runs")
    for row in rows:
        table.add_row(
            f"{row.created_at:%Y-%m-%d %H:%M:%S}",
            row.perimeter,
            row.trigger,
            row.source,
            row.title[:50],
            row.status,
            str(row.task_runs),
        )
    console.print(table if rows else "no run yet")


@perimeter_app.command("set")
@handle_errors
def set_perimeter(
    perimeter_id: str = typer.Argument(..., metavar="ID", help="platform or a tenant id."),
    title: str = typer.Option(..., help="A readable name."),
    workdir: str = typer.Option(..., help="The working tree task runs work in (absolute)."),
    machine: str | None = typer.Option(None),
    client: str | None = typer.Option(None),
    contact: str | None = typer.Option(None),
    mailbox: str | None = typer.Option(None),
    as_json: bool = JsonOption,
) -> None:
    """Create or update a perimeter and its context."""
    from pydantic import ValidationError

    from automates.agents.runs import Perimeter

    try:
        perimeter = Perimeter(
            id=perimeter_id,
            title=title,
            workdir=Path(workdir),
            machine=machine,
            client=client,
            contact=contact,
            mailbox=mailbox,
        )
    except ValidationError as error:
        problems = field_problems(error, "(perimeter)")
        raise TaskRunRequestError(f"invalid perimeter {perimeter_id!r}: {problems}") from None
    engine = _engine(load_settings())
    try:
        with transaction(engine) as connection:
            sql.upsert_perimeter(connection, **perimeter.row())
            saved = sql.read_perimeter(connection, perimeter.id)
    finally:
        engine.dispose()
    if as_json:
        emit_json(_plain(saved) if saved is not None else {})
        return
    console.print(f"perimeter {perimeter.id} saved")


@perimeter_app.command("list")
@handle_errors
def list_perimeters(as_json: bool = JsonOption) -> None:
    """Every perimeter with its context."""
    engine = _engine(load_settings())
    try:
        with transaction(engine) as connection:
            rows = sql.all_perimeters(connection)
    finally:
        engine.dispose()
    if as_json:
        emit_json([_plain(row) for row in rows])
        return
    columns = ("id", "kind", "title", "workdir", "machine", "client", "contact", "mailbox")
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(getattr(row, column) or "-") for column in columns))
    console.print(table)
