"""Maintenance statements on the store's own tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from automates.store.schema import SCHEMA, metadata

TABLE_STATS = text(
    "SELECT relname AS table, n_live_tup AS live_rows, n_dead_tup AS dead_rows,"
    " pg_size_pretty(pg_total_relation_size(relid)) AS size"
    " FROM pg_stat_user_tables WHERE schemaname = :schema AND relname = ANY(:tables)"
    " ORDER BY relname"
)


def analyze_tables(autocommit: Connection, *, vacuum: bool) -> None:
    """ANALYZE, or VACUUM (ANALYZE), each table; needs an autocommit connection (VACUUM)."""
    command = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
    for table in metadata.sorted_tables:
        autocommit.execute(text(f'{command} "{SCHEMA}"."{table.name}"'))


def table_stats(connection: Connection) -> list[dict[str, Any]]:
    """Live rows, dead rows and total size of each store table."""
    tables = [table.name for table in metadata.sorted_tables]
    rows = connection.execute(TABLE_STATS, {"schema": SCHEMA, "tables": tables})
    return [dict(row._mapping) for row in rows]
