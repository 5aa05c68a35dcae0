"""agent-heartbeat: one check-in of an agent (its `heartbeat-AGENT` deployment, every `every`).

Before any model call the run ends `Skipped`, saying why, when the heartbeat is disabled, it is
outside its active hours, its checklist is effectively empty, or the agent already has a task
run in flight. Otherwise one agent task run, under the heartbeat template, goes through the
checklist. A reply that acknowledges (`HEARTBEAT_OK`, automates/scheduling/agent_heartbeat.py)
ends the run Completed and delivers nothing; its record is this run, its journal row and the
task run. Any other reply ends it `Findings` with the reply as its message: the run's outcome
alert, through the routes, de-duplicated there (24 h by default).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.context import get_run_context
from prefect.states import Completed, Failed, State

from automates.agents.taskruns import TaskRunRequest, execute
from automates.guard.recording import store
from automates.registry.heartbeat import MAX_CHECKLIST_CHARS, Heartbeat
from automates.scheduling.agent_heartbeat import (
    ACK_TOKEN,
    checklist_is_empty,
    is_acknowledgement,
)
from automates.settings import Settings
from automates.store.agent_heartbeats import heartbeat_of
from automates.store.engine import transaction
from automates.store.taskruns import final_answer, task_runs_in_flight

# What the agent is asked before its checklist.
PROMPT = (
    "Heartbeat check-in. Go through the checklist below. If nothing needs the operator's "
    f"attention, reply with exactly {ACK_TOKEN} and nothing else. Otherwise reply with what "
    f"needs attention, briefly, without {ACK_TOKEN}.\n\nChecklist:\n"
)
MAX_FINDING_CHARS = 2000


@flow(name="agent-heartbeat")
def agent_heartbeat(agent: str) -> State:
    """One check-in of `agent`: skipped, acknowledged, or a finding."""
    settings = Settings()
    engine = store(settings.store_block)
    # The check-in's task run has the flow run's id: a retry finds its own earlier attempt's
    # row still running, which is not another task run in flight.
    flow_run_id = get_run_context().flow_run.id  # type: ignore[union-attr]
    with transaction(engine) as connection:
        heartbeat = heartbeat_of(connection, agent)
        in_flight = task_runs_in_flight(connection, agent, but=flow_run_id)
    if heartbeat is None:
        return Failed(message=f"agent {agent!r} has no heartbeat configured")
    try:
        checklist = _checklist(heartbeat, settings.project_root)
    except OSError as error:
        return Failed(message=f"cannot read the checklist {heartbeat.checklist_file}: {error}")
    reason = skip_reason(heartbeat, checklist, in_flight, datetime.now(UTC))
    if reason is not None:
        return Completed(name="Skipped", message=f"skipped before any model call: {reason}")
    try:
        request = TaskRunRequest(
            codename=heartbeat.name,
            agent=agent,
            prompt=PROMPT + checklist,
            template=heartbeat.template,
            perimeter=heartbeat.perimeter,
        )
    except ValueError as error:
        return Failed(message=f"not a valid heartbeat task run: {error}")
    logger = get_run_logger()
    result = execute(
        engine,
        request,
        task_run_id=flow_run_id,
        flow_run_id=flow_run_id,
        settings=settings,
        log=logger.info,
    )
    if result.status != "completed":
        return Failed(message=f"heartbeat task run {result.status}: {result.message}")
    with transaction(engine) as connection:
        reply = final_answer(connection, flow_run_id) or ""
    if is_acknowledgement(reply):
        return Completed(message=f"acknowledged ({ACK_TOKEN}): nothing to deliver")
    finding = reply.strip()[:MAX_FINDING_CHARS] or "(an empty reply)"
    return Completed(name="Findings", message=finding)


def skip_reason(heartbeat: Heartbeat, checklist: str, in_flight: int, now: datetime) -> str | None:
    """Why this check-in must not call the model, if so."""
    if not heartbeat.enabled:
        return "the heartbeat is disabled"
    hours = heartbeat.active_hours
    if hours is not None and not hours.contains(now):
        return f"outside its active hours ({hours.label})"
    if checklist_is_empty(checklist):
        return "its checklist is empty (only blank lines, headings, empty items or comments)"
    if in_flight:
        return f"agent {heartbeat.agent!r} already has {in_flight} task run(s) in flight"
    return None


def _checklist(heartbeat: Heartbeat, root: Path) -> str:
    if heartbeat.checklist is not None:
        return heartbeat.checklist
    assert heartbeat.checklist_file is not None
    with (root / heartbeat.checklist_file).open(encoding="utf-8", errors="replace") as file:
        text = file.read(MAX_CHECKLIST_CHARS + 1)
    if len(text) > MAX_CHECKLIST_CHARS:
        raise OSError(f"longer than {MAX_CHECKLIST_CHARS} characters")
    return text
