"""Statements on agents' routines and on the journal of their tool calls.

A routine row holds what the agent asked for (its `RoutineSpec`); the declaration it becomes is
derived from it with the settings of the moment (automates/registry/routine.py), so a routine
reads like any declaration everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, inspect, select
from sqlalchemy.dialects.postgresql import insert

from automates.registry.routine import RoutineSpec
from automates.states import ToolCallOutcome
from automates.store.rows import StoredRow
from automates.store.schema import SCHEMA, agent_heartbeats, agent_routines, agent_tool_calls


@dataclass(frozen=True)
class StoredRoutine(StoredRow):
    """A row of `agent_routines`: one agent's routine, as the agent last gave it."""

    name: str
    agent: str
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def routine(self) -> RoutineSpec:
        return RoutineSpec.model_validate(self.spec)


@dataclass(frozen=True)
class ToolCall(StoredRow):
    """A row of `agent_tool_calls`: one call of the layer's MCP tools by an agent."""

    id: int
    called_at: datetime
    agent: str
    tool: str
    arguments: dict[str, Any]
    outcome: ToolCallOutcome
    detail: str | None


def agent_tables_exist(connection: Connection) -> bool:
    """Whether the store holds agents' routines and heartbeats at all: a store not migrated
    yet has none to read (sync reads the declarations before it migrates)."""
    inspector = inspect(connection)
    return all(
        inspector.has_table(table.name, schema=SCHEMA)
        for table in (agent_routines, agent_heartbeats)
    )


def stored_routines(connection: Connection, agent: str | None = None) -> list[StoredRoutine]:
    """Every routine (or one agent's), ordered by name."""
    query = select(agent_routines).order_by(agent_routines.c.name)
    if agent is not None:
        query = query.where(agent_routines.c.agent == agent)
    return [StoredRoutine.from_row(row) for row in connection.execute(query)]


def stored_routine(
    connection: Connection, name: str, *, lock: bool = False
) -> StoredRoutine | None:
    """One routine; with `lock`, its row is locked until the transaction ends (an update reads
    the spec it changes under the lock, so two agents' changes cannot interleave)."""
    query = select(agent_routines).where(agent_routines.c.name == name)
    row = connection.execute(query.with_for_update() if lock else query).first()
    return None if row is None else StoredRoutine.from_row(row)


def count_routines(connection: Connection, agent: str) -> int:
    query = select(func.count()).where(agent_routines.c.agent == agent)
    return int(connection.execute(query).scalar_one())


def save_routine(connection: Connection, agent: str, spec: RoutineSpec) -> None:
    """Insert the routine, or replace its spec (its owner never changes)."""
    statement = insert(agent_routines).values(
        name=spec.name, agent=agent, spec=spec.model_dump(mode="json")
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[agent_routines.c.name],
            set_={"spec": statement.excluded.spec, "updated_at": func.now()},
            where=agent_routines.c.agent == agent,
        )
    )


def delete_routine(connection: Connection, name: str) -> None:
    connection.execute(delete(agent_routines).where(agent_routines.c.name == name))


def journal_tool_call(
    connection: Connection,
    agent: str,
    tool: str,
    arguments: dict[str, Any],
    outcome: ToolCallOutcome,
    detail: str | None,
) -> None:
    connection.execute(
        insert(agent_tool_calls).values(
            agent=agent, tool=tool, arguments=arguments, outcome=outcome.value, detail=detail
        )
    )


def tool_calls(
    connection: Connection, agent: str | None = None, limit: int = 100
) -> list[ToolCall]:
    """The latest tool calls (of one agent), newest first."""
    query = select(agent_tool_calls).order_by(agent_tool_calls.c.id.desc()).limit(limit)
    if agent is not None:
        query = query.where(agent_tool_calls.c.agent == agent)
    return [ToolCall.from_row(row) for row in connection.execute(query)]
