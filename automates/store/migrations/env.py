"""Alembic environment: always run with a connection handed over by `automates.store.migrate`."""

from __future__ import annotations

from alembic import context

from automates.store.schema import SCHEMA, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=SCHEMA,
    include_schemas=True,
)
with context.begin_transaction():
    context.run_migrations()
