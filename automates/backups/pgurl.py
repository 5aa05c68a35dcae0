"""A PostgreSQL URL as the backup programs and psycopg take it, its password kept apart.

pg_dump and pg_restore get the connection as a libpq keyword string (quoted by psycopg, so a
Unix-socket folder with spaces survives) and the password in PGPASSWORD: a password on a
command line is readable by every user of the machine (`ps`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from automates.errors import BackupError
from automates.store.urls import mask_passwords, redacted

# What our sessions show in pg_stat_activity (pg_dump and pg_restore show their own name).
APPLICATION = "automates-backup"
# Databases a drill or a restore never drops or replaces, whatever the URL says.
SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})


@dataclass(frozen=True)
class PgUrl:
    """One database on one server: where to connect, and the password apart."""

    url: URL

    @classmethod
    def parse(cls, text: str) -> PgUrl:
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            raise BackupError(
                f"{mask_passwords(text)} is not a database URL: give postgresql://user@host/db"
            ) from None
        if not url.drivername.startswith(("postgresql", "postgres")) or not url.database:
            raise BackupError(
                f"{redacted(text)} is not a PostgreSQL database URL: give postgresql://user@host/db"
            )
        return cls(url.set(drivername="postgresql"))

    @classmethod
    def of_engine(cls, engine: Engine) -> PgUrl:
        """The database `engine` connects to (the store's, in the backup automates)."""
        return cls.parse(engine.url.render_as_string(hide_password=False))

    @property
    def database(self) -> str:
        assert self.url.database is not None  # parse() refuses a URL without one
        return self.url.database

    @property
    def shown(self) -> str:
        """The URL for messages: never its password."""
        return self.url.render_as_string(hide_password=True)

    def on(self, database: str) -> PgUrl:
        """The same server and role, another database."""
        return PgUrl(self.url.set(database=database))

    @property
    def conninfo(self) -> str:
        """libpq keywords without the password (for pg_dump/pg_restore --dbname)."""
        params: dict[str, str | int | None] = {
            "host": self.url.host,
            "port": self.url.port,
            "user": self.url.username,
            "dbname": self.url.database,
        }
        for key, value in self.url.query.items():
            params[key] = value if isinstance(value, str) else value[-1]
        return make_conninfo("", **{k: v for k, v in params.items() if v not in (None, "")})

    @property
    def environment(self) -> dict[str, str]:
        """The variables that give the programs the password."""
        return {"PGPASSWORD": self.url.password} if self.url.password else {}

    def open(self, *, autocommit: bool = False) -> psycopg.Connection:
        """A new connection; a refusal becomes `BackupError` naming the database."""
        try:
            return psycopg.connect(
                self.conninfo,
                password=self.url.password or None,
                autocommit=autocommit,
                application_name=APPLICATION,
            )
        except psycopg.Error as error:
            raise BackupError(f"cannot connect to {self.shown}: {_first_line(error)}") from None

    @contextmanager
    def connect(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        """A connection for a block; a driver error becomes `BackupError` naming the database."""
        with self.session(self.open(autocommit=autocommit)) as connection:
            yield connection

    @contextmanager
    def session(self, connection: psycopg.Connection) -> Iterator[psycopg.Connection]:
        """Close `connection` after the block (committing unless it failed); its driver errors
        become `BackupError` naming the database."""
        with connection:
            try:
                yield connection
            except psycopg.Error as error:
                raise BackupError(f"{self.shown} refused: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    return mask_passwords(str(error).strip().splitlines()[0] if str(error).strip() else repr(error))
