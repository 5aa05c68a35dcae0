"""The backup folder: its complete backups, newest first, the leftovers of unfinished ones, and
the rotation applied to it.

Per backup, `automates-<UTC start>` names three files: `.dump` (pg_dump's custom format),
`.manifest.json` (written last: without it the dump never finished and is not a backup) and
`.drill.json` (its latest restore drill). A dump being written is a hidden `.partial` file
named after the process writing it, renamed into place only once complete and checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from automates.backups import rotation
from automates.backups.manifest import Drill, Manifest, fsync_folder, read_drill, read_manifest
from automates.errors import BackupError
from automates.settings import Settings

PREFIX = "automates-"
DUMP = ".dump"
MANIFEST = ".manifest.json"
DRILL = ".drill.json"
PARTIAL = ".partial"


def backup_folder(settings: Settings) -> BackupFolder:
    """The configured folder (AUTOMATES_BACKUP_DIR), default `<data folder>/backups`."""
    given = settings.backup.dir
    path = settings.data_path / "backups" if given is None else settings.project_root / given
    return BackupFolder(path.resolve())


def retention(settings: Settings) -> rotation.Retention:
    """The configured rotation (AUTOMATES_BACKUP_KEEP_DAILY, _WEEKLY, _MONTHLY)."""
    kept = settings.backup
    return rotation.Retention(kept.keep_daily, kept.keep_weekly, kept.keep_monthly)


@dataclass(frozen=True)
class Backup:
    """One complete backup: a dump and its manifest (and its latest drill, if any)."""

    name: str
    folder: Path
    manifest: Manifest
    drill: Drill | None

    @property
    def dump_path(self) -> Path:
        return self.folder / f"{self.name}{DUMP}"

    @property
    def manifest_path(self) -> Path:
        return self.folder / f"{self.name}{MANIFEST}"

    @property
    def drill_path(self) -> Path:
        return self.folder / f"{self.name}{DRILL}"

    @property
    def verified(self) -> bool:
        return self.drill is not None and self.drill.passed

    def as_dict(self) -> dict[str, Any]:
        manifest = self.manifest
        return {
            "name": self.name,
            "dump": str(self.dump_path),
            "started_at": manifest.started_at.isoformat(),
            "duration_seconds": manifest.duration_seconds,
            "size_bytes": manifest.size_bytes,
            "sha256": manifest.sha256,
            "tables": len(manifest.contents.tables),
            "rows": manifest.rows,
            "store_revision": manifest.contents.store_revision,
            "prefect_revision": manifest.contents.prefect_revision,
            "source": manifest.source.model_dump(),
            "verified": self.verified,
            "drill": None if self.drill is None else self.drill.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class Listing:
    backups: tuple[Backup, ...]  # newest first
    unreadable: tuple[str, ...] = field(default=())  # manifests that could not be read, why

    @property
    def newest(self) -> Backup | None:
        return self.backups[0] if self.backups else None

    @property
    def newest_verified(self) -> Backup | None:
        return next((b for b in self.backups if b.verified), None)


@dataclass(frozen=True)
class BackupFolder:
    path: Path

    def scan(self) -> Listing:
        if not self.path.is_dir():
            return Listing(())
        found, unreadable = [], []
        for manifest_path in self.path.glob(f"{PREFIX}*{MANIFEST}"):
            name = manifest_path.name.removesuffix(MANIFEST)
            dump = self.path / f"{name}{DUMP}"
            if not dump.is_file():
                unreadable.append(f"{manifest_path.name}: its dump {dump.name} is missing")
                continue
            try:
                manifest = read_manifest(manifest_path)
                drill = read_drill(self.path / f"{name}{DRILL}")
            except BackupError as error:
                unreadable.append(str(error))
                continue
            found.append(Backup(name, self.path, manifest, drill))
        found.sort(key=lambda b: b.manifest.started_at, reverse=True)
        return Listing(tuple(found), tuple(sorted(unreadable)))

    def named(self, name: str | None) -> Backup:
        """The backup called `name` (its file name with or without `.dump`), else the newest."""
        listing = self.scan()
        if name is None:
            if listing.newest is None:
                raise BackupError(
                    f"no backup in {self.path}: run `automates backup run` (or the backup "
                    "automate) first"
                )
            return listing.newest
        wanted = Path(name).name.removesuffix(DUMP).removesuffix(MANIFEST)
        for backup in listing.backups:
            if backup.name == wanted:
                return backup
        raise BackupError(f"no backup named {wanted} in {self.path}: `automates backup list`")

    def partial_path(self, name: str) -> Path:
        return self.path / f".{name}.{os.getpid()}{PARTIAL}"

    def prepare(self) -> None:
        """Create the folder; remove what unfinished dumps left (their writer is gone)."""
        # Private: a backup holds every row of the store (routes, payloads, results).
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for leftover in self.path.glob(f".{PREFIX}*{PARTIAL}"):
            pid = leftover.name.removesuffix(PARTIAL).rsplit(".", 1)[-1]
            if not (pid.isdigit() and psutil.pid_exists(int(pid))):
                leftover.unlink(missing_ok=True)

    def prune(self, retention: rotation.Retention) -> list[str]:
        """Apply the rotation; return the names removed. The newest backup and the newest one a
        drill proved are always kept, whatever the counts say."""
        listing = self.scan()
        keep = rotation.kept((b.manifest.started_at for b in listing.backups), retention)
        protected = {b.name for b in (listing.newest, listing.newest_verified) if b is not None}
        removed = []
        for backup in listing.backups:
            if backup.manifest.started_at in keep or backup.name in protected:
                continue
            # The manifest first: a backup half removed is no longer listed as complete.
            _remove((backup.manifest_path, backup.dump_path, backup.drill_path))
            removed.append(backup.name)
        if removed:
            fsync_folder(self.path)
        return removed


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
