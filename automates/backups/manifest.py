"""The two JSON records beside each dump: its manifest, and its latest drill.

The manifest says what the dump holds and how it was taken; it is written last, so a dump
without one is not a backup (it never finished). The drill record says when the dump was last
restored and checked, and how that went: kept beside the dump rather than in the database it
backs up, so it is there to read when that database is gone, and travels with the folder
(decision 0045).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from pydantic import AwareDatetime, ValidationError

from automates.backups.identity import Contents, DatabaseIdentity, Frozen
from automates.errors import BackupError

FORMAT = 1
M = TypeVar("M", bound=Frozen)


class Manifest(Frozen):
    format: int = FORMAT
    dump_file: str
    size_bytes: int
    sha256: str
    started_at: AwareDatetime
    finished_at: AwareDatetime
    duration_seconds: float
    source: DatabaseIdentity
    contents: Contents
    pg_dump: str  # the program and its major version that wrote the dump

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.contents.tables)


class DrillOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"


class Drill(Frozen):
    """One restore drill of one backup."""

    outcome: DrillOutcome
    started_at: AwareDatetime
    finished_at: AwareDatetime
    restore_seconds: float | None  # None: it failed before or during the restore
    scratch_database: str
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.outcome is DrillOutcome.PASSED


def drill_summary(drill: Drill | None) -> str:
    """A backup's latest drill in a few words, for tables."""
    if drill is None:
        return "never drilled"
    took = "" if drill.restore_seconds is None else f", restored in {drill.restore_seconds:.1f} s"
    return f"{drill.outcome.value} {drill.finished_at:%Y-%m-%d %H:%M} UTC{took}"


def write_json(path: Path, model: Frozen) -> None:
    """Write atomically and durably: a temporary file, fsync, rename, fsync of the folder. A
    crash leaves the old file or the new one, never half of one."""
    text = json.dumps(model.model_dump(mode="json"), indent=2) + "\n"
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_manifest(path: Path) -> Manifest:
    return _read(path, Manifest)


def read_drill(path: Path) -> Drill | None:
    return _read(path, Drill) if path.exists() else None


def _read(path: Path, model: type[M]) -> M:
    try:
        return model.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as error:
        first = str(error).splitlines()[0]
        raise BackupError(f"cannot read {path}: {first}; move it out of the folder") from None


def started_stamp(moment: datetime) -> str:
    """A backup's name part: its start in UTC, to the microsecond (sortable, unique)."""
    return moment.strftime("%Y%m%dT%H%M%S.%fZ")
