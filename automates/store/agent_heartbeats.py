"""Statements on agents' heartbeats: one configuration an agent (registry/heartbeat.py)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.postgresql import insert

from automates.registry.heartbeat import Heartbeat
from automates.store.schema import agent_heartbeats


def heartbeats(connection: Connection) -> list[Heartbeat]:
    """Every agent's heartbeat, by agent."""
    rows = connection.execute(select(agent_heartbeats.c.config).order_by(agent_heartbeats.c.agent))
    return [Heartbeat.model_validate(config) for (config,) in rows]


def heartbeat_of(connection: Connection, agent: str) -> Heartbeat | None:
    query = select(agent_heartbeats.c.config).where(agent_heartbeats.c.agent == agent)
    config = connection.execute(query).scalar_one_or_none()
    return None if config is None else Heartbeat.model_validate(config)


def save_heartbeat(connection: Connection, heartbeat: Heartbeat) -> None:
    statement = insert(agent_heartbeats).values(
        agent=heartbeat.agent, config=heartbeat.model_dump(mode="json")
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[agent_heartbeats.c.agent],
            set_={"config": statement.excluded.config, "updated_at": func.now()},
        )
    )


def delete_heartbeat(connection: Connection, agent: str) -> None:
    connection.execute(delete(agent_heartbeats).where(agent_heartbeats.c.agent == agent))
