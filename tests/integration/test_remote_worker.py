"""A worker on "another host": started by workers/start-remote-worker from an env file alone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from automates.settings import Settings
from automates.sync import sync
from tests.conftest import REPO
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import run_deployment


def test_a_remote_worker_serves_its_pool(
    server: Settings, project: Project, tmp_path: Path
) -> None:
    pool = f"remote-{os.urandom(3).hex()}"
    project.declare(automate("far-away", kind="oneshot", schedules=[], work_pool=pool))
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    env_file = tmp_path / "worker.env"
    env_file.write_text(f'PREFECT_API_URL="{settings.api_url}"\nAUTOMATES_WORK_POOL={pool}')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMATES_", "PREFECT_API"))}
    env["PREFECT_WORKER_QUERY_SECONDS"] = "2"
    worker = subprocess.Popen(
        [str(REPO / "workers" / "start-remote-worker"), str(env_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert run_deployment(settings, "hello/far-away").state_name == "Completed"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
