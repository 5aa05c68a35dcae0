"""Agents' heartbeats, as the operator drives them (`automates heartbeat ...`) and as an agent
reads its own (the `heartbeat_status` tool): configure, enable, disable, change the interval,
run one now, and the status with the latest check-ins.

A change is validated whole (the configuration, its checklist file, its name among the
declarations) before anything is written, then carried to the server at once like a routine's
(apply.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import Engine

from automates import principal
from automates.errors import HeartbeatError
from automates.registry.entrypoints import static_problems
from automates.registry.heartbeat import Heartbeat, heartbeat_name
from automates.registry.loader import problems_text
from automates.registry.model import Registry
from automates.routines import apply
from automates.server.client import prefect_client
from automates.server.runs import managed_deployment, start_run
from automates.settings import Settings
from automates.store.agent_heartbeats import heartbeat_of, heartbeats, save_heartbeat
from automates.store.declared import declared_in
from automates.store.engine import transaction
from automates.store.journals import recent_executions

RECENT = 5


async def configure(
    settings: Settings, engine: Engine, agent: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Create the agent's heartbeat or change fields of it, then deploy it; its status."""
    with transaction(engine) as connection:
        current = heartbeat_of(connection, agent)
        base = current.model_dump(mode="json") if current is not None else {"agent": agent}
        try:
            heartbeat = Heartbeat.model_validate({**base, **changes, "agent": agent})
        except ValidationError as error:
            wrong = problems_text(error)
            raise HeartbeatError(f"heartbeat of {agent!r}: {wrong}; nothing was changed") from None
        automate = heartbeat.declaration(pool=settings.agent.pool)
        taken = declared_in(connection, settings).get(automate.name)
        if taken is not None and current is None:
            raise HeartbeatError(
                f"{automate.name!r} is already declared; the heartbeat of {agent!r} needs that "
                "name: rename the automate or routine; nothing was changed"
            )
        problems = static_problems(Registry(automates=(automate,)), settings.project_root)
        checklist_file = heartbeat.checklist_file
        if checklist_file is not None and not (settings.project_root / checklist_file).is_file():
            raise HeartbeatError(
                f"checklist_file: {heartbeat.checklist_file} is not a file of the project "
                f"({settings.project_root}); nothing was changed"
            )
        if problems:
            found = "; ".join(f"{p.field}: {p.message}" for p in problems)
            raise HeartbeatError(f"heartbeat of {agent!r}: {found}; nothing was changed")
        save_heartbeat(connection, heartbeat)
    await apply.deploy(settings, engine, automate)
    return status(engine, agent)


async def run_now(settings: Settings, engine: Engine, agent: str, asker: str) -> dict[str, Any]:
    """One check-in now, through the guard and the same checks as a scheduled one, asked for
    by `asker` (a principal, automates/principal.py)."""
    name = heartbeat_name(agent)
    with transaction(engine) as connection:
        if heartbeat_of(connection, agent) is None:
            raise HeartbeatError(f"agent {agent!r} has no heartbeat: `automates heartbeat enable`")
    async with prefect_client(settings.api_url) as client:
        deployment = await managed_deployment(client, name)
        if deployment is None:
            raise HeartbeatError(f"{name!r} has no deployment yet: run `automates sync`")
        run = await start_run(client, deployment, {}, ["trigger:manual", principal.tag(asker)])
    return {"heartbeat": name, "flow_run_id": str(run.id), "flow_run_name": run.name}


def status(engine: Engine, agent: str | None = None) -> dict[str, Any]:
    """Each heartbeat (or one agent's) with its latest check-ins, newest first."""
    with transaction(engine) as connection:
        found = heartbeats(connection)
        if agent is not None:
            found = [h for h in found if h.agent == agent]
            if not found:
                raise HeartbeatError(f"agent {agent!r} has no heartbeat")
        recent = {h.agent: recent_executions(connection, h.name, RECENT) for h in found}
    return {
        "heartbeats": [
            {
                **h.model_dump(mode="json"),
                "name": h.name,
                "recent": to_jsonable_python(
                    [
                        {
                            "finished_at": run.finished_at,
                            "outcome": run.outcome.value,
                            "message": run.message,
                        }
                        for run in recent[h.agent]
                    ]
                ),
            }
            for h in found
        ]
    }
