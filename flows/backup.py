"""backup: a pg_dump of the layer's database (the store and Prefect's tables) into the backup
folder, with its manifest, and the rotation applied (docs/runbooks/backup.md).

The database is the one the store block names, so the run needs no database setting of its
own. A dump that fails leaves the previous backup the newest: the run ends Failed. A dump that
succeeds ends Completed even when no recent backup is proven by a drill (that is an alert,
backup_stale): backup-verify starts after a plainly Completed run of this one.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from automates.backups.dump import take_backup
from automates.backups.folder import retention
from automates.backups.manifest import drill_summary
from automates.errors import BackupError
from flows.backup_workspace import backup_workspace
from tasks.reporting import markdown_table, publish_markdown

MB = 1024 * 1024


@flow(name="backup")
def backup() -> State:
    """Dump the layer's database, write its manifest, apply the rotation."""
    logger = get_run_logger()
    with backup_workspace() as workspace:
        folder = workspace.folder
        try:
            made = take_backup(workspace.database, folder)
        except BackupError as error:
            return Failed(message=f"{error}; the previous backup stays the newest")
        removed = folder.prune(retention(workspace.settings))
        listing, stale = workspace.check_freshness()
    manifest = made.manifest
    summary = (
        f"backup {made.name}: {manifest.size_bytes / MB:.1f} MB, "
        f"{len(manifest.contents.tables)} tables, {manifest.rows} rows, "
        f"dumped in {manifest.duration_seconds:.1f} s; rotation removed {len(removed)}, "
        f"{len(listing.backups)} kept in {folder.path}"
    )
    logger.info(summary)
    if stale is not None:
        logger.warning(stale)
    rows = [
        (b.name, f"{b.manifest.size_bytes / MB:.1f} MB", b.manifest.rows, drill_summary(b.drill))
        for b in listing.backups
    ]
    publish_markdown(
        key="backup",
        markdown=f"# Backups\n\n{summary}.\n\n"
        + markdown_table(("backup", "size", "rows", "last drill"), rows),
        description=summary,
    )
    return Completed(message=summary, data=made.as_dict())
