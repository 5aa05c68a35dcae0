"""The alerts of backups, written to the layer's outbox: a drill failed (or passed again), and
no recent backup is proven (or one is again). A condition's end is written only when it is open
(automates/alerts/outbox.py), so a passing drill every night alerts nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from automates.alerts import catalog
from automates.alerts.outbox import Alert, raise_alert
from automates.backups.folder import Listing
from automates.store.engine import transaction


def staleness(listing: Listing, max_age_days: float, now: datetime | None = None) -> str | None:
    """Why the backups are stale, or None: the newest backup a drill proved is older than
    `max_age_days`, or none was ever proven and the oldest backup is that old already (a
    fresh layer is given the time for its first drill). No backup at all is the backup
    automate's own failure to report."""
    now = now or datetime.now(UTC)
    limit = timedelta(days=max_age_days)
    proven = listing.newest_verified
    if proven is not None:
        age = now - proven.manifest.started_at
        if age <= limit:
            return None
        return f"the newest backup a drill proved, {proven.name}, is {_days(age)} old"
    if not listing.backups:
        return None
    age = now - listing.backups[-1].manifest.started_at
    if age <= limit:
        return None
    return f"no backup passed a restore drill in the {_days(age)} since the oldest one was taken"


def _days(age: timedelta) -> str:
    return f"{age.total_seconds() / 86400:.1f} days"


def raise_freshness(
    engine: Engine, listing: Listing, max_age_days: float, folder: str
) -> str | None:
    """Raise backup_stale when the backups are stale, else end that condition if open; return
    why they are stale (None when they are not)."""
    stale = staleness(listing, max_age_days)
    if stale is not None:
        _raise(engine, catalog.backup_stale(stale, max_age_days, folder))
    elif listing.newest_verified is not None:
        _raise(engine, catalog.backup_fresh(listing.newest_verified.name))
    return stale


def raise_drill(
    engine: Engine, name: str | None, problems: Sequence[str], restore_seconds: float | None
) -> None:
    """A failed (or refused) drill opens backup_drill_failed; a passing one ends it."""
    if problems:
        _raise(engine, catalog.backup_drill_failed(name, problems))
    elif name is not None:
        _raise(engine, catalog.backup_drill_passed(name, restore_seconds))


def _raise(engine: Engine, alert: Alert) -> None:
    with transaction(engine) as connection:
        raise_alert(connection, alert)
