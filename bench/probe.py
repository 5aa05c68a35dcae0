"""What the latency benchmarks (lateness_bench.py, pickup_bench.py) share: the probe project
(a flow whose first statement writes `time.time()`), its declarations, the workers they start
and how they wait for them, and reading back when each body started.

Imported after `server.isolated_run` (Prefect reads its settings from the environment).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.common import log

ENTRYPOINT = "probe/tick.py:tick"
FLOW = '''"""Records when its body started: the benchmark's probe."""

import time

from prefect import flow
from prefect.runtime import flow_run


@flow
def tick(record: str) -> None:
    started = time.time()
    scheduled = flow_run.scheduled_start_time.timestamp()
    with open(record, "a") as out:
        out.write(f"{flow_run.id} {scheduled:.3f} {started:.3f}\\n")
'''
LAUNCHER_READY = "run launcher ready"


def make_project(work: Path) -> Path:
    """A project holding only the probe flow (`probe/tick.py`) and an empty registry folder."""
    project = work / "project"
    (project / "probe").mkdir(parents=True)
    (project / "deployments").mkdir()
    (project / "probe" / "tick.py").write_text(FLOW)
    return project


def declaration(name: str, pool: str, record: Path, **fields: Any) -> dict[str, Any]:
    """One automate running the probe on `pool`, writing to `record` (a oneshot by default)."""
    return {
        "name": name,
        "kind": "oneshot",
        "caste": "bench",
        "family": "bench",
        "description": "latency probe",
        "entrypoint": ENTRYPOINT,
        "parameters": {"record": str(record)},
        "schedules": [],
        "work_pool": pool,
        "timeout_seconds": 60,
        **fields,
    }


def write_registry(settings: Any, declared: list[dict[str, Any]]) -> None:
    registry = settings.project_root / "deployments" / "registry.yaml"
    registry.write_text(yaml.safe_dump({"automates": declared}, sort_keys=False))


def bodies(record: Path) -> Iterator[tuple[str, float, float]]:
    """(flow run id, scheduled time, body started) of every run that wrote to `record`."""
    if record.exists():
        for line in record.read_text().splitlines():
            run_id, scheduled, started = line.split()
            yield run_id, float(scheduled), float(started)


def sleep_until(moment: datetime) -> None:
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        time.sleep(delay)


def with_fast_start(settings: Any, fast: bool) -> Any:
    """The same settings, with AUTOMATES_FAST_START given as `fast` to the workers started."""
    from automates.settings import Settings

    return Settings(**{**settings.model_dump(exclude_unset=True), "fast_start": fast})


def start_layer_worker(settings: Any, pool: str, ready_timeout: float = 180.0) -> None:
    """The layer's process worker on `pool` (`python -m workers.process`), unless one runs.
    With fast start, waits until its log says the run launcher is ready (runs before that
    start the ordinary way, a fresh Python each)."""
    from automates.platform import components

    managed = components.worker(settings, pool)
    offset = managed.log_file.stat().st_size if managed.log_file.exists() else 0
    if not components.start_worker(settings, pool) or not settings.fast_start:
        return
    deadline = time.monotonic() + ready_timeout
    while LAUNCHER_READY not in _log_since(managed.log_file, offset):
        if managed.pid() is None:
            raise RuntimeError(f"the worker on {pool} exited:\n{managed.log_tail()}")
        if time.monotonic() > deadline:
            tail = managed.log_tail()
            raise RuntimeError(f"no '{LAUNCHER_READY}' in {ready_timeout:g} s:\n{tail}")
        time.sleep(0.2)
    log(f"worker on {pool}: {LAUNCHER_READY}")


def start_prefect_worker(settings: Any, pool: str, query_seconds: float | None) -> None:
    """Prefect's own process worker (`prefect worker start --pool POOL --type process`), with
    the environment the layer gives its process worker; `query_seconds` sets
    PREFECT_WORKER_QUERY_SECONDS (None: Prefect's default, 10 s)."""
    from automates.platform import components
    from automates.platform.run_env import run_environment

    env = run_environment(components.prefect_env(settings))
    env.pop("PREFECT_WORKER_QUERY_SECONDS", None)
    if query_seconds is not None:
        env["PREFECT_WORKER_QUERY_SECONDS"] = f"{query_seconds:g}"
    argv = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    components.worker(settings, pool).start(argv, env, cwd=settings.project_root)


def wait_online(api_url: str, pool: str, timeout: float = 120.0) -> None:
    """Until a worker has sent its heartbeat to `pool`."""
    import asyncio

    from automates.server.client import prefect_client

    async def wait() -> None:
        async with prefect_client(api_url) as client:
            deadline = time.monotonic() + timeout
            while not await client.read_workers_for_work_pool(pool):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no worker online on {pool} after {timeout:g} s")
                await asyncio.sleep(0.5)

    asyncio.run(wait())


def launcher_log_counts(settings: Any, pool: str) -> dict[str, int]:
    """How often the pool's worker log says its launcher became ready, or refused a run."""
    from automates.platform import components

    text = _log_since(components.worker(settings, pool).log_file, 0)
    return {
        "launcher_ready": text.count(LAUNCHER_READY),
        "launcher_refused": text.count("the run launcher refused a run"),
    }


def _log_since(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
