"""When backups are stale: the newest backup a drill proved is older than the threshold, or
none was ever proven and the oldest backup is that old already; a fresh layer is not stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from automates.backups.alerting import staleness
from automates.backups.folder import Backup, Listing
from automates.backups.identity import Contents, DatabaseIdentity
from automates.backups.manifest import Drill, DrillOutcome, Manifest

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def backup(days_old: float, drill: DrillOutcome | None) -> Backup:
    started = NOW - timedelta(days=days_old)
    manifest = Manifest(
        dump_file="x.dump",
        size_bytes=1,
        sha256="0" * 64,
        started_at=started,
        finished_at=started,
        duration_seconds=1.0,
        source=DatabaseIdentity(
            system_identifier="1", oid=1, name="automates", server_version_num=180006
        ),
        contents=Contents(tables=(), store_revision="0015", prefect_revision="x"),
        pg_dump="pg_dump (18)",
    )
    record = None
    if drill is not None:
        record = Drill(
            outcome=drill,
            started_at=started,
            finished_at=started,
            restore_seconds=1.0,
            scratch_database="s",
        )
    return Backup(f"automates-{days_old}", Path("/b"), manifest, record)


PASSED, FAILED = DrillOutcome.PASSED, DrillOutcome.FAILED


@pytest.mark.parametrize(
    ("backups", "stale"),
    [
        ([], None),  # nothing yet: the backup automate's own failures say so
        ([backup(1, None)], None),  # a fresh layer, waiting for its first drill
        ([backup(1, None), backup(9, None)], "no backup passed a restore drill in the 9.0 days"),
        ([backup(1, FAILED), backup(9, FAILED)], "no backup passed a restore drill"),
        ([backup(1, FAILED), backup(7.9, PASSED)], None),
        ([backup(1, FAILED), backup(8.5, PASSED)], "automates-8.5, is 8.5 days old"),
        ([backup(0.5, PASSED), backup(30, FAILED)], None),
    ],
    ids=["none", "fresh", "never-proven", "all-failed", "proven", "proven-too-old", "newest"],
)
def test_staleness(backups: list[Backup], stale: str | None) -> None:
    found = staleness(Listing(tuple(backups)), max_age_days=8, now=NOW)
    if stale is None:
        assert found is None
    else:
        assert found is not None and stale in found, found
