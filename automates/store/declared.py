"""Everything declared: the operator's registry file, the agents' routines and the agents'
heartbeats in the store.

Sync, reconcile, `automates list|show|trigger|approve` read the declarations here, so a routine
an agent made is deployed, reconciled, listed, approved and run like an automate of the file.
The file stays the operator's: nothing here writes it, and an agent's routine never shadows one
of its automates (a name in both is a problem that names both).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from automates.errors import DeclarationError, DeclarationProblem, PlatformError
from automates.registry.heartbeat import Heartbeat
from automates.registry.loader import load_registry
from automates.registry.model import Automate, Registry
from automates.registry.routine import RoutineSpec
from automates.settings import Settings
from automates.store.agent_heartbeats import heartbeats
from automates.store.database import database_url
from automates.store.engine import transaction_on
from automates.store.routines import StoredRoutine, agent_tables_exist, stored_routines


def routine_declaration(settings: Settings, agent: str, spec: RoutineSpec) -> Automate:
    """The automate an agent's routine is, with the settings of the moment (which pool runs
    prompts; whether the agent is trusted to enable routines without approval)."""
    return spec.declaration(
        agent, pool=settings.agent.pool, trusted=agent in settings.agent.trusted
    )


def with_routines(
    settings: Settings,
    registry: Registry,
    routines: list[StoredRoutine],
    heartbeats: Sequence[Heartbeat] = (),
) -> Registry:
    """The file's registry, the routines and the heartbeats, or a `DeclarationError` naming
    each routine that no longer reads as a declaration, and each routine or heartbeat that
    takes a name declared before it (the file first, then routines, then heartbeats)."""
    problems: list[DeclarationProblem] = []
    merged = list(registry.automates)
    declared = {a.name for a in merged}
    for row in routines:
        if row.name in declared:
            problems.append(
                DeclarationProblem(
                    row.name,
                    "name",
                    f"declared in the registry file and as a routine of agent {row.agent!r}; "
                    f"rename one (`automates routine delete {row.name}` drops the routine)",
                )
            )
            continue
        try:
            merged.append(routine_declaration(settings, row.agent, row.routine))
        except ValueError as error:  # pydantic's ValidationError included
            problems.append(DeclarationProblem(row.name, "spec", f"not a valid routine: {error}"))
        declared.add(row.name)
    for heartbeat in heartbeats:
        if heartbeat.name in declared:
            problems.append(
                DeclarationProblem(
                    heartbeat.name,
                    "name",
                    f"the heartbeat of agent {heartbeat.agent!r} takes a name already declared; "
                    f"rename that automate or routine",
                )
            )
            continue
        merged.append(heartbeat.declaration(pool=settings.agent.pool))
    if problems:
        raise DeclarationError(problems)
    return Registry(automates=tuple(merged))


def declared_in(connection: Connection, settings: Settings) -> Registry:
    """Everything declared, the routines read on `connection`."""
    registry = load_registry(settings.registry_path)
    if not agent_tables_exist(connection):  # a store not migrated yet has no routine
        return registry
    return with_routines(settings, registry, stored_routines(connection), heartbeats(connection))


def declared_registry(settings: Settings) -> Registry:
    """Everything declared. With no store to read (the embedded PostgreSQL stopped and no
    AUTOMATES_DATABASE_URL), no routine can run either: the file's declarations alone."""
    try:
        url = database_url(settings)
    except PlatformError:
        return load_registry(settings.registry_path)
    with transaction_on(url) as connection:
        return declared_in(connection, settings)
