"""Taking a backup: pg_dump of the whole database, checked, then put in place with its manifest.

The row counts of the manifest and the dump come from one snapshot: a REPEATABLE READ
transaction exports it (`pg_export_snapshot()`) and stays open while pg_dump reads that same
snapshot (`--snapshot`) and the transaction counts in it, side by side. So a drill can demand
the restored counts equal the manifest's exactly, on a layer that kept writing during the dump.

A dump is written under a hidden temporary name, fsynced, read back whole by
`pg_restore --list`, and only then renamed into place; the manifest is written after it. A
dump that fails or is killed half-way leaves a `.partial` file and no manifest: the previous
backup stays the newest.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from automates.backups import tools
from automates.backups.folder import DUMP, MANIFEST, PREFIX, Backup, BackupFolder
from automates.backups.identity import contents, identify
from automates.backups.manifest import Manifest, fsync_folder, started_stamp, write_json
from automates.backups.pgurl import PgUrl
from automates.errors import BackupError

CHUNK = 1024 * 1024


def take_backup(source: PgUrl, folder: BackupFolder) -> Backup:
    """Dump `source` into `folder`; return the backup, complete and checked."""
    folder.prepare()
    started = datetime.now(UTC)
    clock = time.monotonic()
    name = f"{PREFIX}{started_stamp(started)}"
    partial = folder.partial_path(name)
    try:
        with source.connect() as connection:
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            row = connection.execute("SELECT pg_export_snapshot()").fetchone()
            assert row is not None
            identity = identify(connection)
            pg_dump = tools.program("pg_dump", identity.server_version_num)
            dumping = tools.start(
                [
                    str(pg_dump.path),
                    "--format=custom",
                    f"--snapshot={row[0]}",
                    f"--file={partial}",
                    f"--dbname={source.conninfo}",
                ],
                source.environment,
            )
            try:
                # Counted while pg_dump reads: the same snapshot, so the same rows.
                held = contents(connection)
                tools.finish(dumping, f"pg_dump of {source.shown}")
            finally:
                if dumping.poll() is None:
                    dumping.kill()
                    dumping.wait()
            connection.rollback()  # the snapshot may go: pg_dump is done with it
        partial.chmod(0o600)  # as private as the database it copies
        _fsync(partial)
        check_archive(partial, identity.server_version_num)
        size, digest = size_and_sha256(partial)
        dump = folder.path / f"{name}{DUMP}"
        os.replace(partial, dump)
        fsync_folder(folder.path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finished = datetime.now(UTC)
    manifest = Manifest(
        dump_file=dump.name,
        size_bytes=size,
        sha256=digest,
        started_at=started,
        finished_at=finished,
        duration_seconds=round(time.monotonic() - clock, 3),
        source=identity,
        contents=held,
        pg_dump=f"{pg_dump.path} ({pg_dump.major})",
    )
    write_json(folder.path / f"{name}{MANIFEST}", manifest)
    return Backup(name, folder.path, manifest, None)


def check_archive(path: Path, server_version_num: int) -> None:
    """Read the archive's whole table of contents (`pg_restore --list`): a truncated or
    foreign file fails here."""
    pg_restore = tools.program("pg_restore", server_version_num)
    listed = tools.run([str(pg_restore.path), "--list", str(path)], {}, f"reading {path.name}")
    if "TABLE DATA" not in listed and "SCHEMA" not in listed:
        raise BackupError(f"{path.name} lists no schema and no table data: not a backup")


def size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
