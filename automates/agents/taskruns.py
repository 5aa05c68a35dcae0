"""Agent task runs: the execution unit delegated to an agent, one LLM CLI process per attempt.

`execute` is the whole life of one attempt, in the order that keeps every promise:
claim the row (idempotent; at most `MAX_ATTEMPTS`), resolve the perimeter, the permission
template and the model, check the agent's rolling budget under a per-agent lock and reserve
this run's per-run budget, then spawn the CLI, stream each line into the store and the
Prefect log as it arrives, and store the outcome the CLI's final result event reports. A
refusal (unknown perimeter or template, over budget) ends the task run before any process
starts, and says why.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from automates.agents.layer_tools import PrivateFolder, server_environment
from automates.agents.llm_cli import LlmCli, load_llm_cli
from automates.agents.process import TERMINATE_GRACE_SECONDS, CliOutcome, run_cli
from automates.agents.spend_alerts import alert_thresholds
from automates.agents.templates import PermissionTemplate, Scope, load_template
from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.errors import AutomatesError, UnknownPerimeterError, invalid_request
from automates.process_group import terminate_group
from automates.registry.alert_kinds import AlertKind
from automates.settings import Settings
from automates.states import TaskRunStatus
from automates.store import taskruns as sql
from automates.store.engine import transaction
from automates.store.schema import SLUG_PATTERN, TASK_RUN_ENDED

MAX_ATTEMPTS = 4
# The guard's timeout of the agent-task-run deployment (registry) less room for bookkeeping.
MAX_TIMEOUT_SECONDS = 1740
CANCEL_POLL_SECONDS = 1.0


class TaskRunRequest(BaseModel):
    """What an agent is asked to do, where, with which permissions and bounds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codename: str = Field(pattern=SLUG_PATTERN, max_length=80)
    agent: str = Field(pattern=SLUG_PATTERN, max_length=80)
    prompt: str = Field(min_length=1, max_length=100_000)
    template: str = Field(min_length=1, max_length=80)
    perimeter: str = Field(pattern=SLUG_PATTERN, max_length=80)
    exit_criteria: str | None = Field(default=None, max_length=10_000)
    model: str | None = Field(default=None, max_length=120)
    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_SECONDS)
    max_budget_usd: float | None = Field(default=None, gt=0, le=10_000)
    dry_run: bool = False
    run_id: UUID | None = None

    @classmethod
    def parse(cls, values: dict[str, Any]) -> TaskRunRequest:
        """Validated, or a `TaskRunRequestError` naming each field at fault."""
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise invalid_request("agent task run request", error) from None

    def full_prompt(self) -> str:
        if not self.exit_criteria:
            return self.prompt
        return f"{self.prompt}\n\nExit criteria (stop when they hold): {self.exit_criteria}"


class TaskRunResult(BaseModel):
    """How one attempt ended, as stored."""

    model_config = ConfigDict(frozen=True)

    task_run_id: UUID
    status: str
    attempt: int
    message: str
    command: list[str] | None = None
    exit_code: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


def new_task_run(engine: Engine, request: TaskRunRequest, settings: Settings) -> UUID:
    """Record a pending task run (checked against the store's perimeters); its id."""
    task_run_id = uuid4()
    with transaction(engine) as connection:
        if sql.read_perimeter(connection, request.perimeter) is None:
            raise UnknownPerimeterError(_no_perimeter(request.perimeter))
        sql.insert_task_run(connection, id=task_run_id, **_row_values(request, settings))
    return task_run_id


def execute(
    engine: Engine,
    request: TaskRunRequest,
    *,
    task_run_id: UUID,
    flow_run_id: UUID | None,
    settings: Settings,
    log: Callable[[str], None],
    cancel_requested: Callable[[], bool] = lambda: False,
) -> TaskRunResult:
    """Run one attempt of the task run to its end; never raises for the run's own failures."""
    # An MCP configuration carrying secrets (the layer's tools: the store's URL) lives in a
    # private file for the CLI's start-up only: removed once its init event is read, at the
    # latest when the attempt ends.
    with PrivateFolder() as private:
        claim = _claim(engine, request, task_run_id, flow_run_id, settings, private)
        if isinstance(claim, TaskRunResult):
            return claim
        attempt, cli, argv, scope, timeout, budget = claim
        if request.dry_run:
            return _finish(engine, task_run_id, attempt, "completed", "dry run: not started", argv)

        def started(pid: int) -> None:
            with transaction(engine) as connection:
                sql.update_task_run(connection, task_run_id, pid=pid, started_at=_now())

        def line(text: str) -> None:
            with transaction(engine) as connection:
                sql.append_output(connection, task_run_id, attempt, text)
            log(text)

        watcher = _CancelWatcher(engine, task_run_id, cancel_requested)
        watcher.start()
        try:
            outcome = run_cli(
                argv,
                cwd=scope.workdir,
                env=cli.environment(os.environ),
                timeout_seconds=timeout,
                max_budget_usd=float(budget),
                on_start=started,
                on_line=line,
                on_init=private.close,
            )
        finally:
            watcher.stop()
        status = "cancelled" if watcher.fired else outcome.status
        message = _message(status, outcome)
        return _finish(engine, task_run_id, attempt, status, message, argv, outcome, settings)


def _claim(
    engine: Engine,
    request: TaskRunRequest,
    task_run_id: UUID,
    flow_run_id: UUID | None,
    settings: Settings,
    private: PrivateFolder,
) -> TaskRunResult | tuple[int, LlmCli, list[str], Scope, int, Decimal]:
    """Mark the task run running for a new attempt, or say why it must not start."""
    with transaction(engine) as connection:
        sql.insert_task_run(connection, id=task_run_id, **_row_values(request, settings))
        row = sql.lock_task_run(connection, task_run_id)
        assert row is not None
        if row.status in TASK_RUN_ENDED:
            return _result(row, f"already {row.status}; nothing started")
        if row.status is TaskRunStatus.RUNNING and row.flow_run_id not in (None, flow_run_id):
            return _result(row, f"already running in flow run {row.flow_run_id}; not started")
        attempt = row.attempts + 1
        if attempt > MAX_ATTEMPTS:
            return _end(connection, row, "failed", f"gave up after {MAX_ATTEMPTS} attempts")
        sql.update_task_run(connection, task_run_id, attempts=attempt, flow_run_id=flow_run_id)
        row = replace(row, attempts=attempt)
        perimeter = sql.read_perimeter(connection, request.perimeter)
        if perimeter is None:
            return _end(connection, row, "failed", _no_perimeter(request.perimeter))
        try:
            template, cli = _load_blocks(request.template, settings.llm.cli_block)
            workdir = Path(perimeter.workdir)
            scope = Scope(workdir=workdir, report_dir=_report_dir(workdir, request))
            model = cli.resolve_model(request.agent, request.model)
            timeout = row.timeout_seconds
            budget = Decimal(row.max_budget_usd or settings.task_run.max_budget_usd)
            argv = cli.command(
                prompt=request.full_prompt(),
                template=template,
                scope=scope,
                model=model,
                max_budget_usd=float(budget),
                max_turns=None,
                agent=request.agent,  # the request's, never the model's
                template_name=request.template,
                layer_env=_layer_env(engine, settings) if template.layer_tools else None,
                private=private,
            )
        except AutomatesError as error:
            return _end(connection, row, "failed", str(error))
        if not request.dry_run:
            refusal = budget_refusal(connection, request.agent, budget, settings)
            if refusal:
                return _end(connection, row, "over_budget", refusal, argv)
            if scope.report_dir is not None:
                scope.report_dir.mkdir(parents=True, exist_ok=True)
        sql.update_task_run(
            connection,
            task_run_id,
            status="running",
            model=model,
            command=argv,
            max_budget_usd=budget,
            heartbeat_at=_now(),
            started_at=None,
            pid=None,
            error=None,
        )
    return attempt, cli, argv, scope, timeout, budget


def _layer_env(engine: Engine, settings: Settings) -> dict[str, str]:
    """The settings the layer's MCP server needs, its store being this run's."""
    database_url = engine.url.render_as_string(hide_password=False)
    return server_environment(settings, database_url, os.environ)


def _load_blocks(template_name: str, cli_name: str) -> tuple[PermissionTemplate, LlmCli]:
    """The template and CLI blocks, read from the API side by side (the dispatch latency)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        template = pool.submit(load_template, template_name)
        cli = pool.submit(load_llm_cli, cli_name)
        return template.result(), cli.result()


def budget_refusal(
    connection: Any,
    agent: str,
    budget: Decimal,
    settings: Settings,
    what: str = "this run's budget",
) -> str | None:
    """Why the agent's rolling 24-hour budget cannot take this run's per-run budget (or, for
    an LLM facade call, `what` names its worst case), if so.

    Checked and reserved under a per-agent lock, so two runs of one agent (or a run and a
    facade call) cannot both fit in the last dollar."""
    sql.lock_agent_budget(connection, agent)
    limit = Decimal(str(settings.agent.budgets_usd.get(agent, settings.agent.daily_budget_usd)))
    committed = sql.committed_spend(connection, agent, _now())
    if committed + budget <= limit:
        return None
    return (
        f"refused before start: agent {agent!r} has ${committed:.4f} spent or reserved over the "
        f"last 24 h; {what} ${budget:.4f} would pass its ${limit:.2f} budget"
    )


def _finish(
    engine: Engine,
    task_run_id: UUID,
    attempt: int,
    status: str,
    message: str,
    argv: list[str],
    outcome: CliOutcome | None = None,
    settings: Settings | None = None,
) -> TaskRunResult:
    values: dict[str, Any] = {"status": status, "ended_at": _now(), "error": None}
    if status != "completed":
        values["error"] = message
    if outcome is not None:
        values.update(
            exit_code=outcome.exit_code,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            cost_usd=Decimal(str(outcome.cost_usd)),
            terminal_reason=outcome.terminal_reason,
        )
    with transaction(engine) as connection:
        sql.update_task_run(connection, task_run_id, **values)
        row = sql.read_task_run(connection, task_run_id)
        assert row is not None
        # The CLI was stopped at its per-run budget (runaway cost) or its timeout (runaway
        # time): killed either way.
        if status in ("over_budget", "timed_out"):
            raise_alert(
                connection,
                catalog.task_run(AlertKind.TASK_RUN_KILLED, row.agent, row.codename, message),
            )
        if outcome is not None and settings is not None and row.cost_usd > 0:
            alert_thresholds(connection, row.agent, settings)
    return _result(row, message, attempt)


def _end(
    connection: Any, row: sql.TaskRun, status: str, message: str, argv: list[str] | None = None
) -> TaskRunResult:
    values: dict[str, Any] = {
        "status": TaskRunStatus(status),
        "ended_at": _now(),
        "error": message,
    }
    if argv is not None:
        values["command"] = argv
    sql.update_task_run(connection, row.id, **values)
    if status == "over_budget":  # refused before start: the agent's budget is spent
        raise_alert(
            connection,
            catalog.task_run(AlertKind.TASK_RUN_OVER_BUDGET, row.agent, row.codename, message),
        )
    return _result(replace(row, **values), message)


def _result(row: sql.TaskRun, message: str, attempt: int | None = None) -> TaskRunResult:
    return TaskRunResult(
        task_run_id=row.id,
        status=row.status,
        attempt=attempt or row.attempts,
        message=message,
        command=row.command,
        exit_code=row.exit_code,
        input_tokens=row.input_tokens or 0,
        output_tokens=row.output_tokens or 0,
        cost_usd=float(row.cost_usd or 0),
    )


def _message(status: str, outcome: CliOutcome) -> str:
    if status == "cancelled":
        return "cancelled by the operator; the CLI's process group was terminated"
    tokens = f"{outcome.input_tokens} in / {outcome.output_tokens} out tokens"
    tally = f"{tokens}, ${outcome.cost_usd:.4f}"
    if status == "completed":
        return f"completed: {tally}"
    detail = outcome.error or outcome.terminal_reason or f"exit code {outcome.exit_code}"
    return f"{status}: {detail} ({tally})"


def _row_values(request: TaskRunRequest, settings: Settings) -> dict[str, Any]:
    return {
        "run_id": request.run_id,
        "codename": request.codename,
        "agent": request.agent,
        "prompt": request.prompt,
        "template": request.template,
        "perimeter": request.perimeter,
        "exit_criteria": request.exit_criteria,
        "model": request.model,
        "dry_run": request.dry_run,
        "timeout_seconds": request.timeout_seconds or settings.task_run.timeout_seconds,
        "max_budget_usd": request.max_budget_usd,
    }


def _report_dir(workdir: Path, request: TaskRunRequest) -> Path:
    # An audit writes its report here and nowhere else (the template's only Edit rule).
    return workdir / "reports" / request.codename


def _no_perimeter(perimeter: str) -> str:
    return (
        f"unknown perimeter {perimeter!r}: no such perimeter in the store "
        "(`automates perimeter set` records one)"
    )


def _now() -> datetime:
    return datetime.now(UTC)


class _CancelWatcher:
    """Terminates the CLI's process group when the run's cancellation is requested."""

    def __init__(self, engine: Engine, task_run_id: UUID, requested: Callable[[], bool]) -> None:
        self._engine = engine
        self._task_run_id = task_run_id
        self._requested = requested
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self.fired = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stopped.wait(CANCEL_POLL_SECONDS):
            try:
                requested = self._requested()
            except Exception:  # a failed poll is retried at the next tick
                continue
            if not requested:
                continue
            with transaction(self._engine) as connection:
                row = sql.read_task_run(connection, self._task_run_id)
            pid = row and row.pid
            if pid:
                self.fired = True
                # By pid: the CLI's Popen, in run_cli, reaps it and keeps its exit status.
                terminate_group(pid, TERMINATE_GRACE_SECONDS)
                return
