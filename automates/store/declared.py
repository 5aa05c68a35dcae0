"""Everything declared: the operator's registry file, and the agents' routines in the store.

Sync, reconcile, `automates list|show|trigger|approve` read the declarations here, so a routine
an agent made is deployed, reconciled, listed, approved and run like an automate of the file.
The file stays the operator's: nothing here writes it, and an agent's routine never shadows one
of its automates (a name in both is a problem that names both).
"""

from __future__ import annotations

from sqlalchemy import Connection

from automates.errors import DeclarationError, DeclarationProblem, PlatformError
from automates.registry.loader import load_registry
from automates.registry.model import Automate, Registry
from automates.registry.routine import RoutineSpec
from automates.settings import Settings
from automates.store.database import database_url
from automates.store.engine import make_engine, transaction
from automates.store.routines import StoredRoutine, routines_table_exists, stored_routines


def routine_declaration(settings: Settings, agent: str, spec: RoutineSpec) -> Automate:
    """The automate an agent's routine is, with the settings of the moment (which pool runs
    prompts; whether the agent is trusted to enable routines without approval)."""
    return spec.declaration(
        agent, pool=settings.agent.pool, trusted=agent in settings.agent.trusted
    )


def with_routines(
    settings: Settings, registry: Registry, routines: list[StoredRoutine]
) -> Registry:
    """The file's registry and the routines, or a `DeclarationError` naming each routine that
    no longer reads as a declaration or takes a name the file declares."""
    problems: list[DeclarationProblem] = []
    declared = {a.name for a in registry.automates}
    merged = list(registry.automates)
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
    if problems:
        raise DeclarationError(problems)
    return Registry(automates=tuple(merged))


def declared_in(connection: Connection, settings: Settings) -> Registry:
    """Everything declared, the routines read on `connection`."""
    registry = load_registry(settings.registry_path)
    if not routines_table_exists(connection):  # a store not migrated yet has no routine
        return registry
    return with_routines(settings, registry, stored_routines(connection))


def declared_registry(settings: Settings) -> Registry:
    """Everything declared. With no store to read (the embedded PostgreSQL stopped and no
    AUTOMATES_DATABASE_URL), no routine can run either: the file's declarations alone."""
    try:
        url = database_url(settings)
    except PlatformError:
        return load_registry(settings.registry_path)
    engine = make_engine(url)
    try:
        with transaction(engine) as connection:
            return declared_in(connection, settings)
    finally:
        engine.dispose()
