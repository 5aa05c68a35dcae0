"""Archiving the crash journal: its old rows moved, whole and checked, into a file, by a
privileged connection only (decision 0049).

The crash journal is append-only: a trigger refuses every UPDATE, DELETE and TRUNCATE, for
every role, so no run and no operator mistake can rewrite or erase a crash. It still must not
grow forever. Its rows leave it only through this one path: written to a gzip'd JSON-lines file
(fsync'd, then renamed into place), counted, and then deleted in the same transaction with
triggers off (`session_replication_role = replica`), which PostgreSQL allows a superuser only.
The layer's normal role, which runs every flow, is refused both. A count that differs from the
file's rolls the deletion back.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select, text

from automates.errors import StoreError
from automates.store.engine import transaction
from automates.store.journals import JournaledCrash
from automates.store.schema import crash_journal


@dataclass(frozen=True)
class Archived:
    """What one archive moved, and where."""

    file: str
    rows: int
    first_id: int | None
    last_id: int | None
    sha256: str

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "rows": self.rows,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "sha256": self.sha256,
        }


def archive_crashes(engine: Engine, before: datetime, to: Path) -> Archived:
    """Move every crash journaled before `before` into the file `to` (which must not exist)."""
    if to.exists():
        raise StoreError(f"{to} exists: archive into a new file; nothing was changed")
    with transaction(engine) as connection:
        superuser = connection.execute(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ).scalar_one()
        if not superuser:
            raise StoreError(
                "archiving the crash journal needs a superuser connection (the layer's own role "
                "may not delete crashes): pass --database-url with one; nothing was changed"
            )
        rows = connection.execute(
            select(crash_journal)
            .where(crash_journal.c.occurred_at < before)
            .order_by(crash_journal.c.id)
            .with_for_update()
        )
        crashes = [JournaledCrash.from_row(row) for row in rows]
        digest = _write(to, crashes)
        if not crashes:
            return Archived(str(to), 0, None, None, digest)
        first, last = crashes[0].id, crashes[-1].id
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        deleted = connection.execute(
            crash_journal.delete().where(
                crash_journal.c.occurred_at < before, crash_journal.c.id.between(first, last)
            )
        ).rowcount
        if deleted != len(crashes):
            to.unlink()
            raise StoreError(
                f"{deleted} crashes deleted but {len(crashes)} archived: rolled back, nothing "
                "was changed"
            )
    return Archived(str(to), len(crashes), first, last, digest)


def _write(to: Path, crashes: list[JournaledCrash]) -> str:
    """The crashes as gzip'd JSON lines, published whole (a crash mid-write leaves no file);
    the file's SHA-256."""
    to.parent.mkdir(parents=True, exist_ok=True)
    draft = to.with_name(f".{to.name}.{os.getpid()}")
    with draft.open("wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb") as zipped:
            for crash in crashes:
                zipped.write(json.dumps(crash.as_dict(), default=str).encode() + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    os.chmod(draft, 0o600)  # tracebacks may name paths and data of the runs
    draft.rename(to)
    return hashlib.sha256(to.read_bytes()).hexdigest()
