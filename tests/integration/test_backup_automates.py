"""The backup and backup-verify automates, run by a real worker from their deployments on the
session's server: a dump of the live layer (the store and Prefect's own tables, written to as
it is dumped), the drill its `after` trigger starts, and a damaged backup's failed drill."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.schemas.objects import FlowRun

from automates.backups.folder import backup_folder
from automates.platform import components
from automates.settings import Settings
from automates.store.engine import head_revision
from automates.sync import sync
from tests.conftest import REPO
from tests.fixtures.servers import (
    layer_settings,
    raised_alerts,
    runs_of,
    wait_for,
)
from tests.fixtures.shipped_runs import run


@pytest.fixture
def backup_layer(server: Settings, tmp_path: Path) -> Iterator[Settings]:
    """The session's server with a worker of this repository's checkout whose runs keep their
    backups in this test's folder (AUTOMATES_BACKUP_DIR reaches the runs through the worker)."""
    pool = f"pool-{os.urandom(3).hex()}"
    settings = layer_settings(
        server, project_root=REPO, work_pool=pool, backup={"dir": str(tmp_path)}
    )
    components.start_worker(settings, pool)
    yield settings
    components.worker(settings, pool).stop()


def test_backup_then_its_drill_through_the_worker(backup_layer: Settings, tmp_path: Path) -> None:
    settings = backup_layer
    asyncio.run(sync(settings, settings.database_url or ""))
    seen = len(raised_alerts(settings))  # the session's store outlives each test

    flow_run, _ = run(settings, "backup/backup", timeout=300)  # asked again if Skipped
    assert flow_run.state_name == "Completed", flow_run.state
    folder = backup_folder(settings)
    [made] = folder.scan().backups
    assert made.dump_path.parent == tmp_path
    manifest = made.manifest
    counts = {t.qualified: t.rows for t in manifest.contents.tables}
    assert counts["public.flow_run"] >= 1 and counts["automates.automates"] >= 1
    assert manifest.contents.store_revision == head_revision()
    assert manifest.contents.prefect_revision is not None  # Prefect's own migration
    assert flow_run.state is not None and made.name in (flow_run.state.message or "")

    # The drill starts after a completed backup (its `after` trigger), and passes: the
    # counts taken during the dump are the dump's, though the server kept writing.
    def drill_ended() -> list[FlowRun]:
        runs = runs_of(settings, "backup-verify/backup-verify")
        return [r for r in runs if r.state is not None and r.state.is_final()]

    [drilled] = wait_for(drill_ended, 300, "the drill the backup's completion starts")
    assert drilled.state_name == "Completed", drilled.state
    proven = folder.scan().newest_verified
    assert proven is not None and proven.name == made.name
    assert proven.drill is not None and proven.drill.restore_seconds is not None

    # A damaged dump: the drill fails, the run is Failed, the outbox holds the alert.
    whole = made.dump_path.read_bytes()
    made.dump_path.write_bytes(whole[: len(whole) // 3])
    failed, _ = run(settings, "backup-verify/backup-verify", timeout=300)
    assert failed.state_name == "Failed" and failed.state is not None
    assert "truncated or changed" in (failed.state.message or ""), failed.state
    drill_alerts = [
        a for a in raised_alerts(settings)[seen:] if a["kind"].startswith("backup_drill")
    ]
    assert [a["kind"] for a in drill_alerts] == ["backup_drill_failed"]
    assert made.name in drill_alerts[0]["title"]
