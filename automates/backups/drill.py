"""A restore drill: the newest backup restored into a scratch database and checked against its
manifest, the scratch database dropped whatever happens, the outcome recorded beside the dump.

The scratch database must not be the live one, told by identity (the cluster's
system_identifier and the database's oid), not by its name or URL: the drill drops it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from automates.backups.folder import Backup
from automates.backups.identity import DatabaseIdentity
from automates.backups.manifest import Drill, DrillOutcome, write_json
from automates.backups.pgurl import PgUrl
from automates.backups.restore import (
    admin,
    check_restored,
    create_database,
    drop_database,
    locate,
    pg_restore,
    refuse_system,
    verify_file,
)
from automates.errors import BackupError, RestoreRefused

DRILL_SUFFIX = "_restore_drill"


def default_scratch(live: PgUrl, database: str | None) -> PgUrl:
    """The drill's scratch database: the one configured, else `<live>_restore_drill`, on the
    live database's server."""
    return live.on(database or f"{live.database[: 63 - len(DRILL_SUFFIX)]}{DRILL_SUFFIX}")


def guard(scratch: PgUrl, live: DatabaseIdentity) -> None:
    """Refuse a scratch database that is the live one (nothing is touched)."""
    refuse_system(scratch, "a drill")
    target = locate(scratch)
    if target.is_database(live):
        raise RestoreRefused(
            f"{scratch.shown} is the live database ({live.name}, oid {live.oid} on cluster "
            f"{live.system_identifier}): a drill drops its scratch database; name another "
            "(AUTOMATES_BACKUP_DRILL_DATABASE, or --to)"
        )


def drill(backup: Backup, scratch: PgUrl, live: DatabaseIdentity, *, jobs: int) -> Drill:
    """Run one drill of `backup` into `scratch` and record it beside the dump.

    Raises RestoreRefused, with nothing done and nothing recorded, when `scratch` is the live
    database; every other failure is the drill's outcome.
    """
    guard(scratch, live)
    started = datetime.now(UTC)
    problems: list[str] = []
    seconds = None
    try:
        verify_file(backup)
        with admin(scratch) as connection:
            drop_database(connection, scratch.database)  # what an interrupted drill left
            create_database(connection, scratch.database)
        try:
            server = locate(scratch).server.server_version_num
            seconds = pg_restore(backup, scratch, server, jobs)
            problems += check_restored(backup, scratch)
        finally:
            problems += _dropped(scratch)
    except BackupError as error:
        problems.append(str(error))
    record = Drill(
        outcome=DrillOutcome.FAILED if problems else DrillOutcome.PASSED,
        started_at=started,
        finished_at=datetime.now(UTC),
        restore_seconds=seconds,
        scratch_database=scratch.shown,
        problems=tuple(problems),
    )
    write_json(backup.drill_path, record)
    return record


def _dropped(scratch: PgUrl) -> list[str]:
    try:
        with admin(scratch) as connection:
            drop_database(connection, scratch.database)
    except BackupError as error:
        return [f"the scratch database {scratch.database} could not be dropped: {error}"]
    return []
