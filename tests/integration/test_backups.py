"""Backups and restore drills on real PostgreSQL servers, with the real pg_dump and pg_restore:
the machine's (AUTOMATES_TEST_DATABASE_URL, or the session's embedded one) and an embedded
PostgreSQL 18 started from the wheel for this module."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from automates.backups.alerting import raise_drill
from automates.backups.drill import default_scratch, drill
from automates.backups.dump import take_backup
from automates.backups.folder import BackupFolder
from automates.backups.manifest import write_json
from automates.backups.pgurl import PgUrl
from automates.backups.restore import identity_of
from automates.cli.app import app
from automates.errors import RestoreRefused
from automates.store import embedded_pg
from automates.store.engine import head_revision, make_engine, migrate
from automates.store.urls import with_database
from tests.conftest import REPO
from tests.fixtures.servers import cli_json, wait_for

ROWS = 5000
PASSWORD = "s3cret-pw"  # trust authentication ignores it; it must never be printed


def fill(url: str) -> None:
    """The store at its newest migration, a table of rows, and Prefect's version table."""
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE public.payload (id bigint PRIMARY KEY, body text)")
        connection.execute(
            "INSERT INTO public.payload SELECT n, md5(n::text) FROM generate_series(1, %s) n",
            (ROWS,),
        )
        connection.execute("CREATE TABLE public.alembic_version (version_num text)")
        connection.execute("INSERT INTO public.alembic_version VALUES ('prefect-head')")


@pytest.fixture
def store(scratch_database: str) -> str:
    fill(scratch_database)
    return scratch_database


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An embedded PostgreSQL 18 of the wheel, in a folder of its own, its database filled."""
    data = tmp_path_factory.mktemp("embedded-pg")
    url = embedded_pg.start(data)
    fill(url)
    yield url
    embedded_pg.stop(data)


def database_exists(url: str, name: str) -> bool:
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return found.fetchone() is not None


def payload_rows(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM public.payload").fetchone()
        return int(row[0]) if row else -1


def respelled(url: Any) -> Any:
    """The same server under another spelling: `localhost` for `127.0.0.1` (or back), or the
    embedded server's socket folder written with a trailing `/.`."""
    if url.host is None:
        return url.set(query={**url.query, "host": f"{url.query['host']}/."})
    return url.set(host="127.0.0.1" if url.host == "localhost" else "localhost")


def backup_and_drill(url: str, folder: BackupFolder) -> tuple[Any, Any]:
    live = PgUrl.parse(url)
    made = take_backup(live, folder)
    record = drill(made, default_scratch(live, None), identity_of(live), jobs=2)
    return made, record


@pytest.mark.parametrize("server", ["machine", "embedded"])
def test_backup_then_drill(server: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue("store" if server == "machine" else "embedded")
    folder = BackupFolder(tmp_path / "backups")
    made, record = backup_and_drill(url, folder)

    manifest = made.manifest
    counts = {t.qualified: t.rows for t in manifest.contents.tables}
    assert counts["public.payload"] == ROWS and counts["automates.alembic_version"] == 1
    assert "automates.execution_journal" in counts and "automates.alerts" in counts
    assert manifest.contents.store_revision == head_revision()
    assert manifest.contents.prefect_revision == "prefect-head"
    written = made.dump_path.read_bytes()
    assert (manifest.size_bytes, manifest.sha256) == (
        len(written),
        hashlib.sha256(written).hexdigest(),
    )
    assert manifest.source == identity_of(PgUrl.parse(url))
    # The client programs fit the server: the wheel's 18 for the embedded one.
    major = manifest.source.server_version_num // 10000
    assert manifest.pg_dump.endswith(f"({major})")
    if server == "embedded":
        assert str(embedded_pg.client_bin()) in manifest.pg_dump

    assert record.passed, record.problems
    assert record.restore_seconds is not None and record.restore_seconds > 0
    scratch = default_scratch(PgUrl.parse(url), None).database
    assert not database_exists(url, scratch)  # dropped after the drill
    listing = folder.scan()
    assert listing.newest_verified is not None and listing.newest_verified.name == made.name
    assert json.loads(made.drill_path.read_text())["outcome"] == "passed"


@pytest.mark.parametrize("damage", ["truncated", "truncated-with-its-checksum"])
def test_a_corrupted_backup_fails_its_drill_with_an_alert(
    damage: str, store: str, tmp_path: Path
) -> None:
    folder = BackupFolder(tmp_path / "backups")
    live = PgUrl.parse(store)
    made = take_backup(live, folder)
    whole = made.dump_path.read_bytes()
    made.dump_path.write_bytes(whole[: len(whole) // 2])
    if damage == "truncated-with-its-checksum":  # so that pg_restore itself meets the damage
        half = whole[: len(whole) // 2]
        manifest = made.manifest.model_copy(
            update={"size_bytes": len(half), "sha256": hashlib.sha256(half).hexdigest()}
        )
        write_json(made.manifest_path, manifest)
        made = folder.named(made.name)

    record = drill(made, default_scratch(live, None), identity_of(live), jobs=2)
    raise_drill(make_engine(store), made.name, record.problems, record.restore_seconds)

    assert not record.passed
    said = " ".join(record.problems)
    if damage == "truncated":
        assert "truncated or changed" in said and record.restore_seconds is None
    else:
        assert "pg_restore" in said
    assert not database_exists(store, default_scratch(live, None).database)
    assert folder.scan().newest_verified is None
    with psycopg.connect(store) as connection:
        alerts = connection.execute(
            "SELECT kind, title, condition FROM automates.alerts ORDER BY id"
        ).fetchall()
    assert alerts == [
        (
            "backup_drill_failed",
            f"restore drill of backup {made.name} failed",
            "backup_drill_failed:backups",
        )
    ]


def test_the_drill_refuses_the_live_database_under_another_spelling(
    store: str, tmp_path: Path
) -> None:
    folder = BackupFolder(tmp_path / "backups")
    live = PgUrl.parse(store)
    made = take_backup(live, folder)
    other = PgUrl(respelled(live.url).set(password=PASSWORD))
    with pytest.raises(RestoreRefused, match="is the live database") as refused:
        drill(made, other, identity_of(live), jobs=2)
    assert PASSWORD not in str(refused.value)
    # The configured scratch name may be the live one too: still refused, by identity.
    with pytest.raises(RestoreRefused, match="is the live database"):
        drill(made, default_scratch(live, live.database), identity_of(live), jobs=2)
    with pytest.raises(RestoreRefused, match="system database"):
        drill(made, live.on("postgres"), identity_of(live), jobs=2)
    assert payload_rows(store) == ROWS  # nothing touched
    assert not made.drill_path.exists()  # no drill happened, none recorded


# The backup of a child process, the way a flow run takes it.
BACKUP_IN_A_CHILD = """
import sys
from pathlib import Path
from automates.backups.dump import take_backup
from automates.backups.folder import BackupFolder
from automates.backups.pgurl import PgUrl
take_backup(PgUrl.parse(sys.argv[1]), BackupFolder(Path(sys.argv[2])))
"""


def test_a_dump_killed_half_way_leaves_the_previous_backup_newest(
    store: str, tmp_path: Path
) -> None:
    folder = BackupFolder(tmp_path / "backups")
    good = take_backup(PgUrl.parse(store), folder)
    # A session holds the payload table exclusively: pg_dump, once started, waits for it, so
    # the dump is caught half-way (its file begun, not finished) for as long as needed.
    with psycopg.connect(store) as locker, psycopg.connect(store, autocommit=True) as watcher:
        locker.execute("LOCK TABLE public.payload IN ACCESS EXCLUSIVE MODE")
        child = subprocess.Popen(
            [sys.executable, "-c", BACKUP_IN_A_CHILD, store, str(folder.path)], cwd=REPO
        )
        try:

            def pg_dump_waits() -> bool:
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'"
                    " AND wait_event_type = 'Lock' AND datname = current_database()"
                ).fetchone()
                return bool(row and row[0])

            wait_for(pg_dump_waits, 60, "pg_dump to wait for the payload table")
            partial = wait_for(lambda: list(folder.path.glob(".*.partial")), 30, "its file")
            child.kill()
            assert child.wait() == -9
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        locker.rollback()

        def sessions_gone() -> bool:  # pg_dump dies with its parent (pdeathsig)
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND application_name IN ('pg_dump',"
                " 'automates-backup')"
            ).fetchone()
            return bool(row and row[0] == 0)

        wait_for(sessions_gone, 30, "the killed backup's sessions to end")

    listing = folder.scan()
    assert [b.name for b in listing.backups] == [good.name]
    assert sorted(p.name for p in folder.path.iterdir() if not p.name.startswith(".")) == sorted(
        [good.dump_path.name, good.manifest_path.name]
    )
    assert partial[0].exists()  # left behind, never renamed into place
    # The next backup clears what the killed one left, and becomes the newest.
    after = take_backup(PgUrl.parse(store), folder)
    assert not partial[0].exists()
    assert [b.name for b in folder.scan().backups] == [after.name, good.name]


def cli(env: dict[str, str], *args: str) -> tuple[int, Any]:
    done = CliRunner().invoke(app, ["backup", *args, "--json"], env=env)
    output = done.stdout
    assert PASSWORD not in output and PASSWORD not in (done.stderr or "")
    return done.exit_code, json.loads(output) if output.strip() else None


def test_the_cli_with_json(store: str, tmp_path: Path) -> None:
    live = PgUrl.parse(store)
    secret_url = live.url.set(password=PASSWORD).render_as_string(hide_password=False)
    env = {
        "AUTOMATES_DATABASE_URL": secret_url,
        "AUTOMATES_DATA_DIR": str(tmp_path / "data"),
        "AUTOMATES_BACKUP_DIR": str(tmp_path / "backups"),
    }
    code, found = cli(env, "list")
    assert (code, found["backups"]) == (0, [])

    code, made = cli(env, "run")
    assert code == 0 and made["removed"] == []
    name = made["backup"]["name"]
    assert made["backup"]["verified"] is False and made["backup"]["rows"] >= ROWS

    code, drilled = cli(env, "verify")
    assert code == 0 and drilled["drill"]["outcome"] == "passed", drilled
    assert drilled["stale"] is None
    # The drill passes, but the newest proven backup is older than allowed: found, exit 1.
    # The limit (~86 us) is below any backup's age here: the backup was taken before the whole
    # drill above ran (a limit near a second raced a fast machine's drill).
    code, late = cli({**env, "AUTOMATES_BACKUP_MAX_AGE_DAYS": "0.000000001"}, "verify")
    assert code == 1 and late["drill"]["outcome"] == "passed", late
    assert late["stale"].startswith("the newest backup a drill proved"), late
    code, found = cli(env, "list")
    [listed] = found["backups"]
    assert (listed["name"], listed["verified"]) == (name, True)
    assert listed["drill"]["restore_seconds"] > 0

    elsewhere = respelled(live.url).set(password=PASSWORD).render_as_string(False)
    code, refused = cli(env, "verify", "--to", elsewhere)
    assert code == 2 and "is the live database" in refused["error"]

    # Into a new database: created, checked, named.
    copy = f"{live.database}_copy"
    target = live.on(copy).url.set(password=PASSWORD).render_as_string(False)
    try:
        code, restored = cli(env, "restore", name, "--to", target)
        assert code == 0 and restored["replaced"] is None and restored["live"] is False
        assert payload_rows(with_database(store, copy)) == ROWS
        code, refused = cli(env, "restore", name, "--to", target)
        assert code == 2 and "exists: --force replaces it" in refused["error"]
    finally:
        drop(store, copy)

    # Into the live database: --force, and nobody else connected.
    code, refused = cli(env, "restore", "--to", "live")
    assert code == 2 and "is the live database: --force replaces it" in refused["error"]
    with psycopg.connect(store) as connection:
        connection.execute("DELETE FROM public.payload WHERE id > 10")
        connection.commit()
        code, refused = cli(env, "restore", "--to", "live", "--force")
        assert code == 2 and "session(s) still use" in refused["error"], refused
    code, restored = cli(env, "restore", "--to", "live", "--force")
    try:
        assert code == 0 and restored["live"] is True, restored
        assert payload_rows(store) == ROWS  # the rows deleted after the backup are back
        assert database_exists(store, restored["replaced"])  # the replaced one, kept aside
    finally:
        drop(store, restored["replaced"])


def drop(url: str, name: str) -> None:
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def embedded_alone(data: Path, action: str) -> str:
    """Start or stop the embedded PostgreSQL of `data` from a process of its own, as `up` and
    `down` do: the wheel keeps one handle per data folder for a process's life."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from automates.store import embedded_pg;"
            f" print(embedded_pg.{action}(Path(sys.argv[1])))",
            str(data),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_cli_restores_the_stopped_embedded_database(tmp_path: Path) -> None:
    """`automates down` stops the embedded PostgreSQL with the layer: `restore --to live`
    starts it alone for the restore, and stops it after."""
    data = tmp_path / "data"
    fill(embedded_alone(data, "start"))
    env = {
        **os.environ,
        "AUTOMATES_DATA_DIR": str(data),
        "AUTOMATES_BACKUP_DIR": str(tmp_path / "backups"),
    }
    try:
        made = cli_json(env, "backup", "run", "--json")
        assert made["backup"]["source"]["server_version_num"] >= 180000
        url = embedded_pg.running_url(data)
        assert url is not None
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("DELETE FROM public.payload")
        embedded_alone(data, "stop")

        restored = cli_json(env, "backup", "restore", "--to", "live", "--force", "--json")
        assert restored["live"] is True and restored["replaced"], restored
        assert embedded_pg.state(data) == "stopped"  # as the layer left it
        url = embedded_alone(data, "start")
        assert payload_rows(url) == ROWS
        assert database_exists(url, restored["replaced"])
    finally:
        embedded_alone(data, "stop")
