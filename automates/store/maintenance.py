"""Maintenance statements on the store's own tables."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from automates.store.rows import StoredRow
from automates.store.schema import SCHEMA, metadata

TABLE_STATS = text(
    "SELECT relname AS table, n_live_tup AS live_rows, n_dead_tup AS dead_rows,"
    " pg_size_pretty(pg_total_relation_size(relid)) AS size"
    " FROM pg_stat_user_tables WHERE schemaname = :schema AND relname = ANY(:tables)"
    " ORDER BY relname"
)


@dataclass(frozen=True)
class TableStats(StoredRow):
    """A row of TABLE_STATS: one store table's figures, from PostgreSQL's statistics."""

    table: str
    live_rows: int
    dead_rows: int
    size: str  # the total size (with indexes and TOAST), as pg_size_pretty writes it


def analyze_tables(autocommit: Connection, *, vacuum: bool) -> None:
    """ANALYZE, or VACUUM (ANALYZE), each table; needs an autocommit connection (VACUUM)."""
    command = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
    for table in metadata.sorted_tables:
        autocommit.execute(text(f'{command} "{SCHEMA}"."{table.name}"'))


def table_stats(connection: Connection) -> list[TableStats]:
    """Live rows, dead rows and total size of each store table."""
    tables = [table.name for table in metadata.sorted_tables]
    rows = connection.execute(TABLE_STATS, {"schema": SCHEMA, "tables": tables})
    return [TableStats.from_row(row) for row in rows]
