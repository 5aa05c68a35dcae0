"""What the backup automates (backup, backup-verify) both work with: the settings, the backup
folder, and the store's engine onto the layer's database, the one they dump and restore."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from automates.backups.alerting import raise_freshness
from automates.backups.folder import BackupFolder, Listing, backup_folder
from automates.backups.pgurl import PgUrl
from automates.settings import Settings
from blocks.store import store_engine


@dataclass(frozen=True)
class BackupWorkspace:
    settings: Settings
    folder: BackupFolder
    engine: Engine
    database: PgUrl

    def check_freshness(self) -> tuple[Listing, str | None]:
        """The folder's backups, and why they are stale (None when they are not), having
        raised backup_stale or ended it."""
        listing = self.folder.scan()
        max_age_days = self.settings.backup.max_age_days
        return listing, raise_freshness(self.engine, listing, max_age_days, str(self.folder.path))


@contextmanager
def backup_workspace() -> Iterator[BackupWorkspace]:
    """The workspace of one run; its engine is disposed when the run leaves it."""
    settings = Settings()
    folder = backup_folder(settings)
    engine = store_engine(settings)
    try:
        yield BackupWorkspace(settings, folder, engine, PgUrl.of_engine(engine))
    finally:
        engine.dispose()
