"""`automates backup list | run | verify | restore`: backups of the layer's database and their
restore drills (docs/runbooks/backup.md, docs/runbooks/backup-verify.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.table import Table

from automates.backups.alerting import raise_drill, raise_freshness
from automates.backups.drill import default_scratch, drill
from automates.backups.dump import take_backup
from automates.backups.folder import backup_folder, retention
from automates.backups.identity import DatabaseIdentity
from automates.backups.manifest import drill_summary
from automates.backups.pgurl import PgUrl
from automates.backups.restore import identity_of, locate, other_sessions, restore_as
from automates.cli.output import (
    JsonOption,
    console,
    emit_json,
    handle_errors,
    load_settings,
    working,
)
from automates.errors import BackupError, RestoreRefused
from automates.platform.lifecycle import EMBEDDED_PG
from automates.platform.supervision import ALIVE, Supervisor
from automates.settings import Settings
from automates.store import embedded_pg
from automates.store.database import database_url
from automates.store.engine import make_engine

app = typer.Typer(help="Backups of the layer's database, proven by restore drills.")
NameArgument = typer.Argument(None, help="The backup (default: the newest).", show_default=False)
MB = 1024 * 1024
LIVE = "live"  # `--to live`: the layer's own database


@app.command("list")
@handle_errors
def list_backups(as_json: bool = JsonOption) -> None:
    """Every complete backup, newest first, with its latest restore drill (reads the backup
    folder only: works with the database down)."""
    folder = backup_folder(load_settings())
    listing = folder.scan()
    if as_json:
        emit_json(
            {
                "folder": str(folder.path),
                "backups": [b.as_dict() for b in listing.backups],
                "unreadable": list(listing.unreadable),
            }
        )
        return
    if not listing.backups:
        console.print(f"no backup in {folder.path}: `automates backup run` takes one")
    else:
        table = Table("backup", "size", "tables", "rows", "store", "last drill")
        for b in listing.backups:
            m = b.manifest
            table.add_row(
                b.name,
                f"{m.size_bytes / MB:.1f} MB",
                str(len(m.contents.tables)),
                str(m.rows),
                m.contents.store_revision or "-",
                drill_summary(b.drill),
            )
        console.print(table)
    for problem in listing.unreadable:
        console.print(f"[yellow]unreadable:[/yellow] {problem}", highlight=False)


@app.command("run")
@handle_errors
def run(as_json: bool = JsonOption) -> None:
    """Take a backup now, in this process (the layer's database must answer), then apply the
    rotation."""
    settings = load_settings()
    folder = backup_folder(settings)
    with working("dumping the database and checking the dump…", as_json):
        made = take_backup(PgUrl.parse(database_url(settings)), folder)
    removed = folder.prune(retention(settings))
    if as_json:
        emit_json({"backup": made.as_dict(), "removed": removed})
        return
    m = made.manifest
    console.print(
        f"backup {made.name}: {m.size_bytes / MB:.1f} MB, {len(m.contents.tables)} tables, "
        f"{m.rows} rows in {m.duration_seconds:.1f} s ({made.dump_path}); "
        f"rotation removed {len(removed)}",
        highlight=False,
    )


@app.command("verify")
@handle_errors
def verify(
    name: str | None = NameArgument,
    to: str | None = typer.Option(
        None,
        "--to",
        help="The scratch database to restore into, created and dropped (default: "
        "<live database>_restore_drill on the live server). Never the live database.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """A restore drill now: restore a backup into a scratch database, compare it with its
    manifest, drop the scratch database; exit 1 when the drill fails or the newest backup is
    stale."""
    settings = load_settings()
    folder = backup_folder(settings)
    chosen = folder.named(name)
    live = PgUrl.parse(database_url(settings))
    scratch = PgUrl.parse(to) if to else default_scratch(live, settings.backup.drill_database)
    with working(f"restoring {chosen.name} into {scratch.shown} and comparing…", as_json):
        record = drill(chosen, scratch, identity_of(live), jobs=settings.backup.restore_jobs)
    engine = make_engine(database_url(settings))
    try:
        raise_drill(engine, chosen.name, record.problems, record.restore_seconds)
        stale = raise_freshness(
            engine, folder.scan(), settings.backup.max_age_days, str(folder.path)
        )
    finally:
        engine.dispose()
    if as_json:
        emit_json({"backup": chosen.name, "drill": record.model_dump(mode="json"), "stale": stale})
    else:
        console.print(f"{chosen.name}: {drill_summary(record)}", highlight=False)
        for problem in record.problems:
            console.print(f"[red]problem:[/red] {problem}", highlight=False)
        if stale:
            console.print(f"[yellow]warning:[/yellow] {stale}", highlight=False)
    if not record.passed or stale:
        # Ran, and found something: the backup did not restore as its manifest says, or the
        # newest backup is older than the setting allows (backups are not being taken).
        raise typer.Exit(1)


@app.command("restore")
@handle_errors
def restore(
    name: str | None = NameArgument,
    to: str = typer.Option(
        ...,
        "--to",
        help="The database to restore into (a URL, or `live` for the layer's own). It is "
        "created; an existing one is renamed aside, kept, and needs --force.",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing database; for the live one, the layer must be stopped.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Restore a backup into a database, checked against its manifest before it takes the
    database's name."""
    settings = load_settings()
    chosen = backup_folder(settings).named(name)
    with _live_url(settings) as live_url:
        target = locate(PgUrl.parse(live_url if to == LIVE else to))
        live = _identity_or_none(live_url)
        is_live = target.oid is not None and (live is None or target.is_database(live))
        if target.oid is not None and not force:
            why = "is the live database" if is_live else "exists"
            raise RestoreRefused(
                f"{target.url.shown} {why}: --force replaces it (the old one is kept, renamed "
                f"aside){'; stop the layer first (`automates down`)' if is_live else ''}"
            )
        if is_live:
            _refuse_while_up(settings, target.url)
        with working(f"restoring {chosen.name} into {target.url.shown}…", as_json):
            restored = restore_as(chosen, target, settings.backup.restore_jobs)
    found: dict[str, Any] = {
        "backup": chosen.name,
        "database": target.url.shown,
        "restore_seconds": restored.restore_seconds,
        "replaced": restored.replaced,
        "live": is_live,
    }
    if as_json:
        emit_json(found)
        return
    kept = f"; the database it replaced is kept as {restored.replaced}" if restored.replaced else ""
    console.print(
        f"restored {chosen.name} into {target.url.shown} in {restored.restore_seconds:.1f} s, "
        f"checked against its manifest{kept}",
        highlight=False,
    )


@contextmanager
def _live_url(settings: Settings) -> Iterator[str]:
    """The layer's database URL. The embedded PostgreSQL, stopped with the layer, is started
    alone for the restore and stopped after."""
    if settings.embedded and embedded_pg.running_url(settings.data_path) is None:
        url = embedded_pg.start(settings.data_path)
        try:
            yield url
        finally:
            embedded_pg.stop(settings.data_path)
        return
    yield database_url(settings)


def _identity_or_none(url: str) -> DatabaseIdentity | None:
    """The live database's identity; None when it does not answer (then any existing target
    may be it)."""
    try:
        return identity_of(PgUrl.parse(url))
    except BackupError:
        return None


def _refuse_while_up(settings: Settings, target: PgUrl) -> None:
    """The live database is replaced only with the layer stopped: no supervised process but
    the database runs, and nobody else is connected to it."""
    supervised = Supervisor(settings.data_path / "run")
    state, _ = supervised.process.state()
    running = []
    if state == "running":
        running.append("supervisord")
        if supervised.answering():
            running += [
                name
                for name, info in supervised.programs().items()
                if info.state in ALIVE and name != EMBEDDED_PG
            ]
    if running:
        raise RestoreRefused(
            f"the layer is up ({', '.join(running)}): stop it with `automates down`, then "
            "restore into the live database"
        )
    sessions = other_sessions(target)
    if sessions:
        raise RestoreRefused(
            f"{len(sessions)} session(s) still use {target.shown} ({', '.join(sessions[:5])}): "
            "stop them (a remote worker, a Prefect server elsewhere), then restore"
        )
