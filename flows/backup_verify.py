"""backup-verify: a restore drill of the newest backup (docs/runbooks/backup-verify.md).

The backup is restored into a scratch database on the live database's server (never the live
database itself, told by identity), compared with its manifest (tables, row counts, the store's
and Prefect's migration versions), and the scratch database is dropped whatever happens. The
outcome and the restore's duration are recorded beside the dump. A failed drill is an alert
(backup_drill_failed) and ends the run Failed; a passing drill whose backup is already older
than AUTOMATES_BACKUP_MAX_AGE_DAYS ends it "Findings" (alert backup_stale).
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from automates.backups.alerting import raise_drill
from automates.backups.drill import default_scratch, drill
from automates.backups.manifest import drill_summary
from automates.backups.restore import identity_of
from automates.errors import BackupError
from flows.backup_workspace import backup_workspace
from tasks.reporting import markdown_table, publish_markdown


@flow(name="backup-verify")
def backup_verify(backup: str | None = None) -> State:
    """Restore a backup into a scratch database and check it against its manifest.

    Args:
        backup: the backup's name (default: the newest).
    """
    logger = get_run_logger()
    with backup_workspace() as workspace:
        live, engine = workspace.database, workspace.engine
        drill_settings = workspace.settings.backup
        try:
            chosen = workspace.folder.named(backup)
            scratch = default_scratch(live, drill_settings.drill_database)
            record = drill(chosen, scratch, identity_of(live), jobs=drill_settings.restore_jobs)
        except BackupError as error:  # no backup, a refused scratch database, live unreachable
            raise_drill(engine, backup, [str(error)], None)
            workspace.check_freshness()
            return Failed(message=str(error))
        raise_drill(engine, chosen.name, record.problems, record.restore_seconds)
        listing, stale = workspace.check_freshness()
    tables = len(chosen.manifest.contents.tables)
    if record.passed:
        summary = (
            f"drill of {chosen.name} passed: restored in {record.restore_seconds:.1f} s, "
            f"{tables} tables and {chosen.manifest.rows} rows as the manifest says"
        )
    else:
        summary = f"drill of {chosen.name} failed: " + "; ".join(record.problems[:5])
    rows = [(b.name, b.manifest.rows, drill_summary(b.drill)) for b in listing.backups]
    publish_markdown(
        key="backup-verify",
        markdown=f"# Restore drill\n\n{summary}.\n\n"
        + markdown_table(("backup", "rows", "last drill"), rows),
        description=summary,
    )
    data = {"backup": chosen.name, "drill": record.model_dump(mode="json"), "stale": stale}
    if not record.passed:
        logger.error(summary)
        return Failed(message=summary, data=data)
    logger.info(summary)
    if stale is not None:
        logger.warning(stale)
        return Completed(name="Findings", message=f"{summary}; {stale}", data=data)
    return Completed(message=summary, data=data)
