"""Connecting to the store and bringing its schema up to date."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from automates.errors import StoreError
from automates.store.schema import SCHEMA
from automates.store.urls import redacted, store_url

if TYPE_CHECKING:
    from alembic.config import Config

# alembic is imported where it is used: every guarded run imports this module, none migrates.
MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    return create_engine(store_url(url), pool_pre_ping=True, pool_size=2, max_overflow=3)


def session_engine(engine: Engine) -> Engine:
    """An engine on the same database whose every connection is its own session, opened on
    connect and closed on close (no pool): for a connection held as long as a run, such as the
    one carrying a run's advisory locks. From a small pool shared by every flow of one process
    (the agent dispatcher, the warm worker), a few long runs would take every connection and
    leave the others' short statements waiting."""
    return create_engine(engine.url, poolclass=NullPool)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction; driver errors become `StoreError` naming the database."""
    try:
        with engine.begin() as connection:
            yield connection
    except OperationalError as error:
        where = redacted(engine.url.render_as_string(hide_password=True))
        raise StoreError(f"cannot reach the store at {where}: {error.orig}") from error
    except DBAPIError as error:
        raise StoreError(f"the store refused the operation: {error.orig}") from error


@contextmanager
def transaction_on(url: str) -> Iterator[Connection]:
    """One transaction on an engine made for it and disposed after: a command's one read or
    change, with nothing left connected."""
    engine = make_engine(url)
    try:
        with transaction(engine) as connection:
            yield connection
    finally:
        engine.dispose()


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> str | None:
    """Apply every pending migration (forward only); return the revision now current."""
    from alembic import command

    with transaction(engine) as connection:
        # One migrator at a time, even when several `up` or test sessions race.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('automates.migrate'))")
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        command.upgrade(_alembic_config(connection), "head")
        return current_revision(connection)


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table_schema": SCHEMA})
    return context.get_current_revision()


def head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()
