"""Tasks that work on the store itself."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from automates.store.engine import current_revision, head_revision
from automates.store.maintenance import TableStats, analyze_tables, table_stats


@task(cache_policy=NO_CACHE)
def schema_revision(engine: Engine) -> tuple[str | None, str | None]:
    """(the store's migration revision, the newest one this code ships)."""
    with engine.connect() as connection:
        return current_revision(connection), head_revision()


@task(cache_policy=NO_CACHE)
def maintain_tables(engine: Engine, *, deep: bool) -> list[TableStats]:
    """ANALYZE, or when deep VACUUM (ANALYZE), every store table; return figures after."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        analyze_tables(connection, vacuum=deep)
        return table_stats(connection)
