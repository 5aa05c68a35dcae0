"""The operations behind the layer's MCP tools, for one agent: read its routines, preview
them, see their runs and what waits for the operator; create, update, pause, resume, run and
delete its own.

Each operation reads the declarations as sync does (the registry file and the routines,
automates/store/declared.py), checks the agent's scope (scope.py) and every rule a declaration
meets (the minimum interval, the entrypoint and route checks), and only then writes: a refusal
raises `RoutineError` and changes nothing. A change is carried to the server at once
(apply.py). Answers are plain JSON data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import Connection, Engine

from automates import principal
from automates.alerts.routes import load_routing, registry_problems
from automates.errors import HeartbeatError, RoutineError
from automates.registry.agent_intervals import interval_problems
from automates.registry.digest import declaration_digest
from automates.registry.entrypoints import static_problems
from automates.registry.loader import problems_text
from automates.registry.model import Automate, Registry
from automates.registry.routine import RoutineSpec
from automates.registry.targets import automate_schedules
from automates.routines import apply, heartbeats
from automates.routines.scope import AgentScope
from automates.scheduling.approval import Approval
from automates.scheduling.preview import preview
from automates.server.client import prefect_client
from automates.server.runs import managed_deployment, start_run
from automates.settings import Settings
from automates.store.approvals import awaiting_enable_approval
from automates.store.declared import declared_in, routine_declaration
from automates.store.engine import transaction
from automates.store.held import schedules_held
from automates.store.holds import list_holds
from automates.store.journals import recent_executions
from automates.store.routines import count_routines, save_routine, stored_routine

MAX_PREVIEW = 50
MAX_RUNS = 50
# What a run an agent asked for carries, besides the deployment's tags: who asked.
AGENT_TRIGGER_TAG = "trigger:agent"


class RoutineTools:
    """The tools of one agent: `scope` says what it may read and change."""

    def __init__(self, settings: Settings, engine: Engine, agent: str) -> None:
        self.settings = settings
        self.engine = engine
        self.scope = AgentScope.of(agent, settings)

    @property
    def agent(self) -> str:
        return self.scope.agent

    # Queries

    def list_routines(self) -> dict[str, Any]:
        """The routines this agent sees: its own first, then those it may only read."""
        with transaction(self.engine) as connection:
            registry = declared_in(connection, self.settings)
            visible = [a for a in registry.automates if self.scope.may_read(a)]
            state = self._state(connection, visible)
        visible.sort(key=lambda a: (not self.scope.owns(a), a.name))
        return {"agent": self.agent, "routines": [self._summary(a, state) for a in visible]}

    def show_routine(self, name: str) -> dict[str, Any]:
        with transaction(self.engine) as connection:
            automate = self._readable(connection, name)
            state = self._state(connection, [automate])
            row = stored_routine(connection, name)
        shown = self._summary(automate, state)
        if row is not None and self.scope.owns(automate):
            shown["spec"] = row.spec
        return shown

    async def preview_routine(self, name: str, count: int = 5) -> dict[str, Any]:
        """The next `count` fire times, as Prefect's scheduler makes them, quiet hours applied."""
        if not 1 <= count <= MAX_PREVIEW:
            raise RoutineError(f"count: give 1 to {MAX_PREVIEW}, got {count}")
        with transaction(self.engine) as connection:
            automate = self._readable(connection, name)
        ticks = await preview(
            automate_schedules(automate),
            start=datetime.now(UTC),
            count=count,
            quiet=automate.quiet_hours,
        )
        return {"routine": name, "ticks": [tick.as_dict() for tick in ticks]}

    def routine_runs(self, name: str, limit: int = 10) -> dict[str, Any]:
        """The latest runs and their outcomes, newest first (the execution journal)."""
        if not 1 <= limit <= MAX_RUNS:
            raise RoutineError(f"limit: give 1 to {MAX_RUNS}, got {limit}")
        with transaction(self.engine) as connection:
            self._readable(connection, name)
            runs = recent_executions(connection, name, limit)
        # What a run was and how it ended; not its steps, errors or context, which may quote
        # what an operator's automate handled.
        shown = [{column: run.as_dict()[column] for column in _RUN_COLUMNS} for run in runs]
        return {"routine": name, "runs": _json(shown)}

    def waiting(self) -> dict[str, Any]:
        """What of this agent's visible routines waits for the operator: approvals and holds."""
        with transaction(self.engine) as connection:
            registry = declared_in(connection, self.settings)
            visible = [a for a in registry.automates if self.scope.may_read(a)]
            awaiting = self._awaiting(connection, visible)
            names = {a.name for a in visible}
            holds = [h for h in list_holds(connection) if h.automate in names]
        return {
            "approvals": [
                {
                    "routine": name,
                    "stage": Approval.BEFORE_ENABLE.value,
                    "how": _APPROVE.format(name),
                }
                for name in sorted(awaiting)
            ],
            "holds": _json([hold.as_dict() for hold in holds]),
        }

    def heartbeat_status(self) -> dict[str, Any]:
        """This agent's heartbeat: its configuration and latest check-ins (none if the
        operator configured none)."""
        try:
            return heartbeats.status(self.engine, self.agent)
        except HeartbeatError:  # none configured for this agent
            return {"heartbeats": []}

    # Changes

    async def create_routine(self, spec: RoutineSpec) -> dict[str, Any]:
        automate = self._checked(spec)
        with transaction(self.engine) as connection:
            registry = declared_in(connection, self.settings)
            if registry.get(spec.name) is not None:
                raise RoutineError(
                    f"name {spec.name!r} is taken; choose another (update_routine changes a "
                    "routine of yours)"
                )
            owned = count_routines(connection, self.agent)
            if owned >= self.settings.agent.max_routines:
                raise RoutineError(
                    f"agent {self.agent!r} has {owned} routines, the most allowed "
                    f"(AUTOMATES_AGENT_MAX_ROUTINES={self.settings.agent.max_routines}); "
                    "delete one first"
                )
            save_routine(connection, self.agent, spec)
        return await self._deployed(automate, "created")

    async def update_routine(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields of a routine of this agent's; fields not given keep their value."""
        if "name" in changes and changes["name"] != name:
            raise RoutineError("name: a routine cannot be renamed; create a new one")
        with transaction(self.engine) as connection:
            self.scope.changeable(declared_in(connection, self.settings).get(name), name)
            row = stored_routine(connection, name, lock=True)
            assert row is not None  # owned: it is a stored routine of this agent
            spec = _spec({**row.spec, **changes})
            automate = self._checked(spec)
            save_routine(connection, self.agent, spec)
        return await self._deployed(automate, "updated")

    async def pause_routine(self, name: str) -> dict[str, Any]:
        return await self.update_routine(name, {"enabled": False})

    async def resume_routine(self, name: str) -> dict[str, Any]:
        return await self.update_routine(name, {"enabled": True})

    async def run_routine(self, name: str) -> dict[str, Any]:
        """One run now, through the worker and the guard like any run, tagged with who asked."""
        with transaction(self.engine) as connection:
            automate = self.scope.changeable(declared_in(connection, self.settings).get(name), name)
            awaiting = self._awaiting(connection, [automate])
        if awaiting:
            raise RoutineError(
                f"{name!r} waits for the operator's approval ({_APPROVE.format(name)})"
            )
        tags = [AGENT_TRIGGER_TAG, principal.tag(principal.agent(self.agent))]
        async with prefect_client(self.settings.api_url) as client:
            deployment = await managed_deployment(client, name)
            if deployment is None:
                raise RoutineError(f"{name!r} has no deployment yet; the next sync deploys it")
            run = await start_run(client, deployment, {}, tags)
        return {
            "routine": name,
            "flow_run_id": str(run.id),
            "flow_run_name": run.name,
            "tags": sorted(run.tags),
        }

    async def delete_routine(self, name: str) -> dict[str, Any]:
        with transaction(self.engine) as connection:
            self.scope.changeable(declared_in(connection, self.settings).get(name), name)
        had_deployment = await apply.remove(self.settings, self.engine, name)
        return {"routine": name, "deleted": True, "deployment_deleted": had_deployment}

    # Helpers

    @property
    def _pool(self) -> str:
        return self.settings.work_pool

    def _readable(self, connection: Connection, name: str) -> Automate:
        return self.scope.readable(declared_in(connection, self.settings).get(name), name)

    def _checked(self, spec: RoutineSpec) -> Automate:
        """The declaration the routine becomes, checked as sync checks a declaration, and
        against what the operator lets routines run."""
        allowed = self.settings.agent
        if spec.entrypoint is not None and spec.entrypoint not in allowed.routine_entrypoints:
            raise RoutineError(
                f"entrypoint: {spec.entrypoint!r} is not a flow routines may run "
                f"(AUTOMATES_AGENT_ROUTINE_ENTRYPOINTS: {list(allowed.routine_entrypoints)})"
            )
        if spec.prompt is not None and spec.template not in allowed.routine_templates:
            raise RoutineError(
                f"template: {spec.template!r} is not a template routines may use "
                f"(AUTOMATES_AGENT_ROUTINE_TEMPLATES: {list(allowed.routine_templates)})"
            )
        try:
            automate = routine_declaration(self.settings, self.agent, spec)
        except ValidationError as error:
            raise RoutineError(f"not a valid routine: {problems_text(error)}") from None
        problems = interval_problems([automate], allowed.min_interval_seconds)
        problems += static_problems(Registry(automates=(automate,)), self.settings.project_root)
        problems += registry_problems([automate], load_routing(self.settings.routes_path))
        if problems:
            # A routine has one schedule, `schedule`, where a declaration has `schedules[0]`.
            fields = [p.field.replace("schedules[0]", "schedule", 1) for p in problems]
            raise RoutineError(
                "; ".join(
                    f"{field}: {p.message}" for field, p in zip(fields, problems, strict=True)
                )
            )
        return automate

    async def _deployed(self, automate: Automate, change: str) -> dict[str, Any]:
        report = await apply.deploy(self.settings, self.engine, automate)
        with transaction(self.engine) as connection:
            state = self._state(connection, [automate])
        return {
            **self._summary(automate, state),
            "change": change,
            "deployment": next(iter([*report.created, *report.updated, *report.unchanged]), None),
        }

    def _awaiting(self, connection: Connection, automates: list[Automate]) -> frozenset[str]:
        """Of `automates`, the `before_enable` ones whose current version nobody approved."""
        gated = {
            a.name: declaration_digest(a, a.work_pool or self._pool)
            for a in automates
            if a.approval is Approval.BEFORE_ENABLE
        }
        return awaiting_enable_approval(connection, gated)

    def _state(self, connection: Connection, automates: list[Automate]) -> _State:
        held = schedules_held(connection, Registry(automates=tuple(automates)), self._pool)
        return _State(held=held, awaiting=self._awaiting(connection, automates))

    def _summary(self, automate: Automate, state: _State) -> dict[str, Any]:
        return {
            "name": automate.name,
            "origin": automate.origin,
            "agents": list(automate.agents),
            "yours": self.scope.owns(automate),
            "description": automate.description,
            "schedules": [
                {"slug": s.slug, "form": s.became, "timezone": s.timezone}
                for s in automate.schedules
            ],
            "enabled": automate.enabled,
            "active": automate.enabled and automate.name not in state.held,
            "waiting_for_approval": automate.name in state.awaiting,
            "tags": list(automate.tags),
        }


@dataclass(frozen=True)
class _State:
    held: frozenset[str]  # schedules paused whatever the declaration says
    awaiting: frozenset[str]  # waiting for the operator's approval


_RUN_COLUMNS = (
    "flow_run_id",
    "started_at",
    "finished_at",
    "duration_seconds",
    "outcome",
    "message",
    "attempts",
    "exit_code",
    "principal",
)
_APPROVE = "the operator runs `automates approve {}`"


def _spec(values: dict[str, Any]) -> RoutineSpec:
    try:
        return RoutineSpec.model_validate(values)
    except ValidationError as error:
        raise RoutineError(f"not a valid routine: {problems_text(error)}") from None


def _json(value: Any) -> Any:
    return to_jsonable_python(value)
