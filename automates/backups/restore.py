"""Restoring a backup into a database: the steps a drill and `automates backup restore` share.

A restore never writes into an existing database. It creates a new one, restores into it with
pg_restore, checks it against the manifest, and only then takes the wanted name: an existing
database of that name is renamed aside (kept) first. A failed restore leaves everything as it
was.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import Connection, sql

from automates.backups import tools
from automates.backups.dump import size_and_sha256
from automates.backups.folder import Backup
from automates.backups.identity import DatabaseIdentity, contents, differences, identify
from automates.backups.pgurl import SYSTEM_DATABASES, PgUrl
from automates.errors import BackupError, RestoreRefused

MAX_NAME = 63  # PostgreSQL's identifier length
MAINTENANCE = ("postgres", "template1")


@dataclass(frozen=True)
class Target:
    """Where a restore would go: its server's identity and the database there, if it exists."""

    url: PgUrl
    server: DatabaseIdentity  # of the maintenance database: names the cluster
    oid: int | None  # the target database's, None when it does not exist yet

    def is_database(self, other: DatabaseIdentity) -> bool:
        return self.server.same_server(other) and self.oid == other.oid


def identity_of(url: PgUrl) -> DatabaseIdentity:
    with url.connect() as connection:
        return identify(connection)


@contextmanager
def admin(url: PgUrl) -> Iterator[Connection]:
    """An autocommit session on the maintenance database of `url`'s server (CREATE and DROP
    DATABASE cannot run in a transaction, nor in the database they act on)."""
    failure: BackupError | None = None
    for database in MAINTENANCE:
        maintenance = url.on(database)
        try:
            connection = maintenance.open(autocommit=True)
        except BackupError as error:
            failure = error
            continue
        with maintenance.session(connection):
            yield connection
        return
    assert failure is not None
    raise failure


def locate(url: PgUrl) -> Target:
    with admin(url) as connection:
        server = identify(connection)
        row = connection.execute(
            "SELECT oid::bigint FROM pg_database WHERE datname = %s", (url.database,)
        ).fetchone()
    return Target(url, server, None if row is None else row[0])


def refuse_system(url: PgUrl, what: str) -> None:
    if url.database in SYSTEM_DATABASES:
        raise RestoreRefused(
            f"{url.shown} is the system database {url.database}: {what} needs a database of "
            "its own; name another"
        )


def verify_file(backup: Backup) -> None:
    """The dump is the file its manifest describes: same size, same checksum."""
    size, digest = size_and_sha256(backup.dump_path)
    manifest = backup.manifest
    if (size, digest) != (manifest.size_bytes, manifest.sha256):
        raise BackupError(
            f"{backup.dump_path.name} is not the file its manifest describes ({size} bytes, "
            f"sha256 {digest[:12]}…; the manifest says {manifest.size_bytes} bytes, "
            f"{manifest.sha256[:12]}…): it was truncated or changed; use an older backup"
        )


def create_database(connection: Connection, name: str) -> None:
    connection.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    )


def drop_database(connection: Connection, name: str) -> None:
    connection.execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


def scratch_name(base: str, what: str) -> str:
    suffix = f"_{what}_{secrets.token_hex(3)}"
    return base[: MAX_NAME - len(suffix)] + suffix


def pg_restore(backup: Backup, into: PgUrl, server_version_num: int, jobs: int) -> float:
    """Restore the dump into the empty database `into`; the seconds it took. Owners and grants
    are not restored: the restoring role owns everything, as the layer's role did."""
    program = tools.program("pg_restore", server_version_num)
    started = time.monotonic()
    tools.run(
        [
            str(program.path),
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            f"--jobs={jobs}",
            f"--dbname={into.conninfo}",
            str(backup.dump_path),
        ],
        into.environment,
        f"pg_restore of {backup.name} into {into.shown}",
    )
    return round(time.monotonic() - started, 3)


def check_restored(backup: Backup, into: PgUrl) -> list[str]:
    """How the restored database differs from the manifest (tables, rows, versions)."""
    with into.connect() as connection:
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        found = contents(connection)
    return differences(backup.manifest.contents, found)


@dataclass(frozen=True)
class Restored:
    database: str
    restore_seconds: float
    replaced: str | None  # the name the database it replaced now has


def restore_as(backup: Backup, target: Target, jobs: int) -> Restored:
    """Restore into a new database, check it, then give it the target's name (an existing
    target renamed aside first). The caller decided the target may be replaced."""
    refuse_system(target.url, "a restore")
    verify_file(backup)
    base = target.url.database
    fresh = scratch_name(base, "restoring")
    with admin(target.url) as connection:
        create_database(connection, fresh)
    try:
        seconds = pg_restore(backup, target.url.on(fresh), target.server.server_version_num, jobs)
        problems = check_restored(backup, target.url.on(fresh))
        if problems:
            raise BackupError(
                f"the restored copy of {backup.name} differs from its manifest: "
                + "; ".join(problems[:5])
                + f"; {base} was not changed"
            )
        replaced = None
        with admin(target.url) as connection:
            if target.oid is not None:
                stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
                replaced = f"{base[: MAX_NAME - 23]}_before_restore_{stamp}"
                _rename(connection, base, replaced)
            _rename(connection, fresh, base)
    except BaseException:
        with admin(target.url) as connection:
            drop_database(connection, fresh)
        raise
    return Restored(base, seconds, replaced)


def _rename(connection: Connection, old: str, new: str) -> None:
    connection.execute(
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
    )


def other_sessions(url: PgUrl) -> list[str]:
    """Who else is connected to the database of `url` (application or role names)."""
    with admin(url) as connection:
        rows = connection.execute(
            "SELECT coalesce(nullif(application_name, ''), usename, 'unknown')"
            " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.database,),
        ).fetchall()
    return [str(row[0]) for row in rows]
