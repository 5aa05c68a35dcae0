"""Browser jobs through two residential workers: throughput, enqueue→done latency, duplicates
and losses (docs/benchmarks.md, section "Browser worker").

A throw-away embedded PostgreSQL and Prefect server (bench/server.py), the gate, two
residential workers behind it and the local test site; N `page_snapshot` jobs are enqueued at
once and followed to their end in the store, twice: first with the browser deployment as it was
before decision 0053 (no job variables: Prefect's workspace supervisor beside each job), then
as `browser deploy` writes it now (Prefect's engine as the command, forked from the launcher).

    uv run python bench/browser_bench.py [--jobs 20] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect.client.schemas.actions import DeploymentUpdate

from automates.browser.deploy import FLOW_NAME, ensure_browser_deployment
from automates.browser.enqueue import enqueue_job, get_job
from automates.server.client import prefect_client
from automates.settings import Settings
from automates.settings.groups import BrowserSettings, ServerSettings
from automates.store.engine import make_engine, migrate
from bench import procfs, server
from bench.common import RESULTS, log, percentile
from tests.conftest import free_port
from tests.fixtures.browser_layer import POOL, start_gate, start_worker, stop
from tests.fixtures.browser_site import serve_site

DEADLINE_SECONDS = 900


async def _deploy(settings: Settings, supervisor: bool) -> None:
    """The deployment as `automates browser deploy` writes it; with `supervisor`, as it wrote
    it before decision 0053 (no job variables: Prefect's worker starts its workspace
    supervisor beside each job's engine, and the fast worker cannot fork it)."""
    await ensure_browser_deployment(settings)
    if supervisor:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name(
                f"{FLOW_NAME}/{settings.browser.deployment}"
            )
            await client.update_deployment(deployment.id, DeploymentUpdate(job_variables={}))


def _wait_idle(workers: list[tuple[Any, Path]], timeout: float = 60.0) -> None:
    """Until each worker's tree is the worker and its run launcher only: every job's process
    (and its Chromium) ended and was reaped, so its CPU is in the worker's count."""
    deadline = time.monotonic() + timeout
    while any(len(procfs.tree(process.pid)) > 2 for process, _ in workers):
        if time.monotonic() > deadline:
            raise RuntimeError(f"job processes still running after {timeout:.0f} s")
        time.sleep(0.2)


def measure(
    settings: Settings, database_url: str, folder: Path, jobs: int, supervisor: bool
) -> dict[str, Any]:
    settings = server.with_database(settings, database_url)
    migrate(make_engine(database_url))
    result: dict[str, Any] = {}
    with serve_site(database_url) as site:
        # The test site is on loopback: both sides allow exactly its host:port (decision 0028).
        allowed = [urlsplit(site.url).netloc]
        settings = settings.model_copy(
            update={"browser": settings.browser.model_copy(update={"allowed_hosts": allowed})}
        )
        result = _measure(settings, site, folder, jobs, supervisor, allowed)
    return result


def _measure(
    settings: Settings, site: Any, folder: Path, jobs: int, supervisor: bool, allowed: list[str]
) -> dict[str, Any]:
    asyncio.run(_deploy(settings, supervisor))
    gate = start_gate(settings, folder)
    allow = {"AUTOMATES_BROWSER_ALLOWED_HOSTS": json.dumps(allowed)}
    workers = [start_worker(gate, folder, f"home-{n}", **allow) for n in (1, 2)]
    try:
        log("warm-up job (first imports and Chromium start on each worker)")
        warm = enqueue_job(settings, "page_snapshot", {"url": f"{site.url}/article"})
        while get_job(settings, warm.id).status not in ("done", "failed"):
            time.sleep(0.5)
        cpu_before = sum(procfs.cpu_seconds(process.pid) for process, _ in workers)
        log(f"enqueueing {jobs} page_snapshot jobs")
        ids = [
            enqueue_job(settings, "page_snapshot", {"url": f"{site.url}/article?n={n}"}).id
            for n in range(jobs)
        ]
        deadline = time.monotonic() + DEADLINE_SECONDS
        ended: dict[Any, Any] = {}
        while len(ended) < jobs and time.monotonic() < deadline:
            for job_id in ids:
                if job_id not in ended:
                    job = get_job(settings, job_id)
                    if job.status in ("done", "failed"):
                        ended[job_id] = job
            time.sleep(0.5)
        _wait_idle(workers)  # the last jobs' processes exited and were reaped
        cpu = sum(procfs.cpu_seconds(process.pid) for process, _ in workers) - cpu_before
    finally:
        for process, _ in workers:
            stop(process)
        stop(gate.process)
    gate_log = gate.log.read_text()
    claims = {job_id: gate_log.count(f"/jobs/{job_id}/claim -> 200") for job_id in ids}
    done = [job for job in ended.values() if job.status == "done"]
    latencies = [
        (job.finished_at - job.created_at).total_seconds() for job in done if job.finished_at
    ]
    first = min(job.created_at for job in ended.values())
    last = max(job.finished_at for job in ended.values() if job.finished_at)
    span = (last - first).total_seconds()
    return {
        "jobs": jobs,
        "done": len(done),
        "failed": sum(1 for job in ended.values() if job.status == "failed"),
        "pages_answered_200": sum(
            1 for job in done if (job.result or {}).get("http_status") == 200
        ),
        "lost": jobs - len(ended),
        "duplicates": sum(1 for n in claims.values() if n > 1)
        + sum(1 for job in ended.values() if job.attempts != 1),
        "jobs_per_minute": round(len(done) / span * 60, 2) if span else None,
        "latency_p50_seconds": round(statistics.median(latencies), 1) if latencies else None,
        "latency_p99_seconds": round(percentile(sorted(latencies), 0.99), 1) if latencies else None,
        "latency_max_seconds": round(max(latencies), 1) if latencies else None,
        "hosts": sorted({job.host or "" for job in ended.values()}),
        "span_seconds": round(span, 1),
        "worker_cpu_seconds_per_job": round(cpu / jobs, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="browser-bench-"))
    data_dir = work / "data"
    settings = Settings(
        project_root=Path(__file__).resolve().parents[1],
        data_dir=data_dir,
        server=ServerSettings(port=free_port()),
        work_pool="bench-local",
        browser=BrowserSettings(pool=POOL),
    )
    result: dict[str, Any] = {}
    started = time.perf_counter()
    with server.running_layer(settings, data_dir, work, args.keep, result) as database_url:
        # The baseline first, in the same layer: jobs started beside Prefect's supervisor.
        for phase, supervisor in (("supervisor", True), ("engine_command", False)):
            log(f"phase {phase}")
            result[phase] = measure(settings, database_url, work, args.jobs, supervisor)
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "browser_bench.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
