"""The migrations build exactly the schema the code declares, and the database enforces it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from automates.errors import StoreError
from automates.registry.loader import parse_registry
from automates.store.engine import head_revision, make_engine, migrate, transaction
from automates.store.registry import registry_rows, stored_digests, upsert_automates
from automates.store.schema import SCHEMA, metadata
from tests.conftest import fresh_database
from tests.fixtures.projects import automate

# The schema as PostgreSQL itself spells it back, so two spellings of one rule compare equal and
# any difference in a rule (a CHECK list that drifted from its enumeration) does not.
SHAPE = {
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = :schema""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = :schema",
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity
        FROM information_schema.columns WHERE table_schema = :schema""",
}


def test_migrations_equal_the_declared_schema(scratch_database: str) -> None:
    engine = make_engine(scratch_database)
    assert migrate(engine) == head_revision()
    assert migrate(engine) == head_revision()  # forward-only and idempotent
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "version_table_schema": SCHEMA,
                "include_name": lambda name, type_, parent: type_ != "schema" or name == SCHEMA,
            },
        )
        assert compare_metadata(context, metadata) == []
        constraints = {
            row[0]
            for row in connection.execute(
                text(
                    "SELECT conname FROM pg_constraint JOIN pg_namespace n ON n.oid = connamespace"
                    " WHERE nspname = :schema AND contype = 'c'"
                ),
                {"schema": SCHEMA},
            )
        }
    declared = {
        c.name
        for table in metadata.sorted_tables
        for c in table.constraints
        if c.__class__.__name__ == "CheckConstraint"
    }
    assert constraints == declared
    engine.dispose()


@pytest.fixture
def declared_database(postgres_admin_url: str) -> Iterator[str]:
    """A fresh database holding the store built from the declared metadata, not migrations."""
    with fresh_database(postgres_admin_url, "automates_declared") as url:
        engine = make_engine(url)
        with transaction(engine) as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
            metadata.create_all(connection)
        engine.dispose()
        yield url


def shape(connection: Connection) -> dict[str, set[tuple[str | None, ...]]]:
    """Every constraint, index and column of the store's schema, by its table (alembic's own
    bookkeeping table left out)."""
    return {
        what: {
            tuple(row)
            for row in connection.execute(text(query), {"schema": SCHEMA})
            if row[0] not in ("alembic_version", f"{SCHEMA}.alembic_version")
        }
        for what, query in SHAPE.items()
    }


def test_migrations_build_the_declared_rules_word_for_word(
    scratch_database: str, declared_database: str
) -> None:
    """Like procrastinate's migration test: the bodies, not only the names."""
    migrated, declared = make_engine(scratch_database), make_engine(declared_database)
    migrate(migrated)
    with migrated.connect() as by_migrations, declared.connect() as by_metadata:
        built, wanted = shape(by_migrations), shape(by_metadata)
    migrated.dispose()
    declared.dispose()
    assert built["constraints"], "no constraint read: the query is looking in the wrong place"
    for what in SHAPE:
        only_migrated = sorted(built[what] - wanted[what], key=str)
        only_declared = sorted(wanted[what] - built[what], key=str)
        assert (what, only_migrated, only_declared) == (what, [], [])


@pytest.mark.parametrize(
    ("column", "value"),
    [("kind", "Recurring"), ("caste", "Vigies"), ("family", "sre ops"), ("timeout_seconds", 1801)],
)
def test_the_database_refuses_bad_rows(scratch_database: str, column: str, value: object) -> None:
    engine = make_engine(scratch_database)
    migrate(engine)
    row = {
        "name": "a1",
        "kind": "recurring",
        "caste": "vigies",
        "family": "audits",
        "description": "d",
        "entrypoint": "flows/x.py:f",
        "timeout_seconds": 300,
        "work_pool": "local",
        "enabled": True,
        "declaration": "{}",
        "digest": "x",
    }
    row[column] = value
    columns = ", ".join(row)
    params = ", ".join(f":{k}" for k in row)
    with pytest.raises(StoreError) as caught, transaction(engine) as connection:
        connection.execute(
            text(f"INSERT INTO {SCHEMA}.automates ({columns}) VALUES ({params})"), row
        )
    assert isinstance(caught.value.__cause__, IntegrityError)
    engine.dispose()


def test_registry_rows_round_trip(scratch_database: str) -> None:
    engine = make_engine(scratch_database)
    migrate(engine)
    registry = parse_registry(
        {"automates": [automate("b-audit", agents=["atlas", "sentinel"]), automate("a-audit")]}
    )
    with transaction(engine) as connection:
        upsert_automates(connection, [(a, "local") for a in registry.automates])
        upsert_automates(connection, [(registry.automates[0], "local")])  # replace, not add
    with engine.connect() as connection:
        rows = registry_rows(connection)
        digests = stored_digests(connection)
    assert [r.name for r in rows] == ["a-audit", "b-audit"]
    assert sorted(rows[1].agents) == ["atlas", "sentinel"]
    assert rows[1].declaration["schedules"][0]["timezone"] == "Asia/Makassar"
    assert set(digests) == {"a-audit", "b-audit"}
    engine.dispose()


def test_an_unreachable_store_is_a_clear_error() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError, match="cannot reach the store at postgresql"):
        migrate(engine)
