"""What a database is (its identity) and what it holds (tables, row counts, schema versions).

A database is told apart by identity, never by the spelling of its URL: `localhost` and
`127.0.0.1`, a socket and a port, two user names all reach the same one. The cluster's
`system_identifier` (pg_control_system(), set once by initdb) names the server, the database's
oid names the database on it. A physical copy of a cluster (a standby, a copied data folder)
shares both: it is taken for the same database, which is the safe mistake.
"""

from __future__ import annotations

from psycopg import Connection, sql
from pydantic import BaseModel, ConfigDict

# The store's migrations and Prefect's own keep their revision in these tables.
STORE_VERSION_TABLE = "automates.alembic_version"
PREFECT_VERSION_TABLE = "public.alembic_version"

_IDENTITY = """
    SELECT (SELECT system_identifier FROM pg_control_system())::text, d.oid::bigint, d.datname,
           current_setting('server_version_num')::int
    FROM pg_database d WHERE d.datname = current_database()"""
# Every table a dump of the database holds (partitioned parents too; system schemas not).
_TABLES = """
    SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    ORDER BY 1, 2"""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseIdentity(Frozen):
    system_identifier: str
    oid: int
    name: str
    server_version_num: int

    def same_database(self, other: DatabaseIdentity) -> bool:
        return (self.system_identifier, self.oid) == (other.system_identifier, other.oid)

    def same_server(self, other: DatabaseIdentity) -> bool:
        return self.system_identifier == other.system_identifier


class TableRows(Frozen):
    schema_name: str
    table: str
    rows: int

    @property
    def qualified(self) -> str:
        return f"{self.schema_name}.{self.table}"


class Contents(Frozen):
    """What a database holds, as a manifest records it and a drill compares it."""

    tables: tuple[TableRows, ...]
    store_revision: str | None
    prefect_revision: str | None


def identify(connection: Connection) -> DatabaseIdentity:
    row = connection.execute(_IDENTITY).fetchone()
    assert row is not None  # current_database() is always in pg_database
    return DatabaseIdentity(
        system_identifier=row[0], oid=row[1], name=row[2], server_version_num=row[3]
    )


def contents(connection: Connection) -> Contents:
    """Exact row counts of every table, in the connection's snapshot (a backup counts in the
    snapshot it exports to pg_dump, so the counts are the dump's)."""
    tables = []
    for schema, table in connection.execute(_TABLES).fetchall():
        count = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = connection.execute(count).fetchone()
        tables.append(TableRows(schema_name=schema, table=table, rows=row[0] if row else 0))
    return Contents(
        tables=tuple(tables),
        store_revision=_revision(connection, STORE_VERSION_TABLE),
        prefect_revision=_revision(connection, PREFECT_VERSION_TABLE),
    )


def _revision(connection: Connection, table: str) -> str | None:
    exists = connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    if exists is None or exists[0] is None:
        return None
    schema, name = table.split(".")
    query = sql.SQL("SELECT version_num FROM {}.{}").format(
        sql.Identifier(schema), sql.Identifier(name)
    )
    row = connection.execute(query).fetchone()
    return None if row is None else str(row[0])


def differences(expected: Contents, found: Contents) -> list[str]:
    """Each way `found` differs from `expected`, one line each; none when they agree."""
    problems = []
    if found.store_revision != expected.store_revision:
        problems.append(
            f"store migration {found.store_revision}, manifest says {expected.store_revision}"
        )
    if found.prefect_revision != expected.prefect_revision:
        problems.append(
            f"Prefect schema {found.prefect_revision}, manifest says {expected.prefect_revision}"
        )
    want = {t.qualified: t.rows for t in expected.tables}
    have = {t.qualified: t.rows for t in found.tables}
    for name in sorted(want.keys() - have.keys()):
        problems.append(f"table {name} missing")
    for name in sorted(have.keys() - want.keys()):
        problems.append(f"table {name} not in the manifest")
    for name in sorted(want.keys() & have.keys()):
        if want[name] != have[name]:
            problems.append(f"table {name}: {have[name]} rows, manifest says {want[name]}")
    return problems
