"""The DDL pieces the store's migrations share: columns, constraints and changes to them, in
the `automates` schema, each named after PostgreSQL's own pattern from its table's name.

A helper's output may never change once a migration uses it: old migrations run through it on
every fresh database, so changing what it emits changes what every new store is built from, and
the migrated schema no longer matches the one older stores already have. A changed need gets a
new helper, and the migrations that used the old one keep it.

Migrations import this module by its package path (`from automates.store.migrations import
ddl`): Alembic loads each version by its file, with `automates` importable (env.py imports it
too), under `migrate()` and in tests alike. Helpers take the table's name and build every
constraint's name from it (`{table}_pkey`, `{table}_{column}_fkey`, `{table}_{what}_check`), marked
final with `op.f` so no naming convention rewrites them. The schema's name and the slug pattern
are spelled here, not imported from `automates.store.schema`, which describes today's store and
may change; nothing here may.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA = "automates"
SLUG = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"


def quoted(values: tuple[str, ...]) -> str:
    """`'a', 'b'`: the values as SQL string literals, in their order, for an `IN (...)` list."""
    return ", ".join(f"'{value}'" for value in values)


# Tables and indexes


def create_table(name: str, *elements: sa.schema.SchemaItem) -> None:
    op.create_table(name, *elements, schema=SCHEMA)


def drop_table(name: str) -> None:
    op.drop_table(name, schema=SCHEMA)


def create_index(
    name: str,
    table: str,
    columns: list[str | sa.TextClause],
    *,
    unique: bool = False,
    where: str | None = None,
) -> None:
    """An index named as given (no `op.f`); `where` makes it partial."""
    partial = None if where is None else sa.text(where)
    op.create_index(name, table, columns, schema=SCHEMA, unique=unique, postgresql_where=partial)


# Columns


def identity_id(*, always: bool) -> sa.Column:
    """`id bigint GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY NOT NULL`."""
    identity = sa.Identity(always=True) if always else sa.Identity()
    return sa.Column("id", sa.BigInteger, identity, nullable=False)


def timestamp(name: str, *, nullable: bool = True) -> sa.Column:
    """A `timestamp with time zone` with no default."""
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True))
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def timestamp_now(name: str) -> sa.Column:
    """A `timestamp with time zone NOT NULL DEFAULT now()`: the moment its row was inserted."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def created_and_updated() -> tuple[sa.Column, sa.Column]:
    """`created_at` then `updated_at`, each a `timestamp_now`: when the row was made, and when
    it last changed (its writers move `updated_at`; the database only starts it)."""
    return timestamp_now("created_at"), timestamp_now("updated_at")


def defaulted(
    name: str, type_: sa.types.TypeEngine | type[sa.types.TypeEngine], sql: str
) -> sa.Column:
    """A `NOT NULL` column whose default is the SQL expression `sql` (e.g. `'queued'`, `0`)."""
    return sa.Column(name, type_, nullable=False, server_default=sa.text(sql))


def jsonb(name: str, empty: str) -> sa.Column:
    """A `jsonb NOT NULL` column that starts as `empty` (`{}` or `[]`)."""
    return defaulted(name, JSONB, f"'{empty}'::jsonb")


# Constraints, inside `create_table`


def pkey(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"{table}_pkey"))


def foreign_key(
    table: str, column: str, target: str, *, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    """`{table}_{column}_fkey`: `column` references `target` (`table.column`, in the schema)."""
    return sa.ForeignKeyConstraint(
        [column], [f"{SCHEMA}.{target}"], name=op.f(f"{table}_{column}_fkey"), ondelete=ondelete
    )


def check(table: str, name: str, condition: str) -> sa.CheckConstraint:
    """`{table}_{name}_check`."""
    return sa.CheckConstraint(condition, name=op.f(f"{table}_{name}_check"))


def one_of(table: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    """`{table}_{column}_check`: `column IN (values)`, the values in the order given."""
    return check(table, column, f"{column} IN ({quoted(values)})")


def slug(table: str, column: str) -> sa.CheckConstraint:
    """`{table}_{column}_slug_check`: lowercase letters, digits and inner dashes."""
    return check(table, f"{column}_slug", f"{column} ~ '{SLUG}'")


def slug_pkey(table: str, column: str) -> tuple[sa.PrimaryKeyConstraint, sa.CheckConstraint]:
    """`pkey` then `slug` on the one `column`: a table keyed by a slug."""
    return pkey(table, column), slug(table, column)


# Changes to an existing table


def add_check(table: str, name: str, condition: str) -> None:
    """`ALTER TABLE ... ADD CONSTRAINT {table}_{name}_check CHECK (condition)`."""
    op.create_check_constraint(op.f(f"{table}_{name}_check"), table, condition, schema=SCHEMA)


def replace_check(table: str, name: str, condition: str) -> None:
    """Drop `{table}_{name}_check`, then add it again with `condition`."""
    op.drop_constraint(op.f(f"{table}_{name}_check"), table, schema=SCHEMA, type_="check")
    add_check(table, name, condition)


def replace_one_of(table: str, column: str, values: tuple[str, ...]) -> None:
    """`{table}_{column}_check` becomes `column IN (values)` (a value list grows or shrinks)."""
    replace_check(table, column, f"{column} IN ({quoted(values)})")


def narrow_one_of(table: str, column: str, values: tuple[str, ...]) -> None:
    """A downgrade's `replace_one_of`: first delete the rows whose value is no longer allowed."""
    op.execute(f"DELETE FROM {SCHEMA}.{table} WHERE {column} NOT IN ({quoted(values)})")
    replace_one_of(table, column, values)
