"""The registry tables: the declarations as rows, written by `sync`.

They let SQL (reports, other services, future guards) join runs and journals to the automate
that owns them. Every statement touching the registry tables is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.postgresql import insert

from automates.registry.digest import declaration_digest
from automates.registry.model import Automate, Kind
from automates.store.rows import StoredRow
from automates.store.schema import automate_agents, automate_schedules, automates


@dataclass(frozen=True)
class StoredAutomate(StoredRow):
    """A row of `automates`, with its agents (from `automate_agents`): a declaration as the
    last sync stored it."""

    name: str
    kind: Kind
    caste: str
    family: str
    description: str
    runbook: str | None
    entrypoint: str
    timeout_seconds: int
    concurrency_limit: int | None
    work_pool: str
    enabled: bool
    declaration: dict[str, Any]  # the whole validated declaration, as JSON
    digest: str
    created_at: datetime
    updated_at: datetime
    agents: list[str]  # in no particular order


def stored_declarations(connection: Connection, names: set[str]) -> dict[str, dict[str, Any]]:
    """name → the declaration, as JSON, the last sync stored for each of `names` it knows."""
    if not names:
        return {}
    rows = connection.execute(
        select(automates.c.name, automates.c.declaration).where(automates.c.name.in_(sorted(names)))
    )
    return {name: declaration for name, declaration in rows}


def stored_digests(connection: Connection) -> dict[str, str]:
    """name → digest of every registry row (one query)."""
    rows = connection.execute(select(automates.c.name, automates.c.digest))
    return {name: digest for name, digest in rows}


def upsert_automates(connection: Connection, changed: list[tuple[Automate, str]]) -> None:
    """Insert or replace automates (each with its work pool) with their agents and schedules.

    Five statements whatever the count: one multi-row upsert, then the child rows replaced.
    """
    if not changed:
        return
    rows = [
        {
            "name": automate.name,
            "kind": automate.kind.value,
            "caste": automate.caste,
            "family": automate.family,
            "description": automate.description,
            "runbook": automate.runbook,
            "entrypoint": automate.flow_entrypoint,
            "timeout_seconds": automate.timeout_seconds,
            "concurrency_limit": automate.concurrency_limit,
            "work_pool": pool,
            "enabled": automate.enabled,
            "declaration": automate.model_dump(mode="json"),
            "digest": declaration_digest(automate, pool),
        }
        for automate, pool in changed
    ]
    statement = insert(automates)
    replaced = {column: statement.excluded[column] for column in rows[0] if column != "name"}
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[automates.c.name], set_={**replaced, "updated_at": func.now()}
        ),
        rows,
    )
    names = [automate.name for automate, _ in changed]
    connection.execute(delete(automate_agents).where(automate_agents.c.automate.in_(names)))
    connection.execute(delete(automate_schedules).where(automate_schedules.c.automate.in_(names)))
    agents = [{"automate": a.name, "agent": agent} for a, _ in changed for agent in a.agents]
    if agents:
        connection.execute(insert(automate_agents), agents)
    schedules = [
        {"automate": a.name, "slug": s.slug, "cron": s.form.expression, "timezone": s.timezone}
        for a, _ in changed
        for s in a.schedules
    ]
    if schedules:
        connection.execute(insert(automate_schedules), schedules)


def delete_automates(connection: Connection, names: list[str]) -> None:
    if names:
        connection.execute(delete(automates).where(automates.c.name.in_(names)))


def registry_rows(connection: Connection) -> list[StoredAutomate]:
    """Every registry row with its agents, ordered by name."""
    agents = (
        select(func.coalesce(func.array_agg(automate_agents.c.agent), []))
        .where(automate_agents.c.automate == automates.c.name)
        .scalar_subquery()
    )
    rows = connection.execute(select(automates, agents.label("agents")).order_by(automates.c.name))
    return [StoredAutomate.from_row(row) for row in rows]
