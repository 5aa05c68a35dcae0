"""Benchmark: the highly available profile against the single-process server, for a burst of
triggered runs.

    uv run python -m bench.ha_bench                     # 500 runs each; rewrites its doc section
    uv run python -m bench.ha_bench --runs 50 --no-doc   # a quick look

Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis on 127.0.0.1:6379, as CI has. For
each profile, in the same run: a throw-away project (one `oneshot` script automate that records
its start and exits), a database of its own, `automates up` — single: one Prefect process with
its services; ha: `AUTOMATES_API_WORKERS=2` and `AUTOMATES_REDIS_URL`, two API processes and a
services process — then `automates sync`; the automate runs on the warm pool (in-process runs,
so the server's orchestration, not a Python start-up per run, bounds the throughput), capped
at WORKER_SLOTS runs at once, and:

1. API throughput: `--runs` flow runs created through the API, CONCURRENCY requests at a time
   (`create_flow_run_from_deployment`, what `automates trigger` and the webhook do): requests
   per second.
2. Run throughput: from the first request until every run is Completed: runs per minute.
3. Exactly once: each run's command appends its flow run id; every id must appear once (no run
   lost, none doubled).

The ratio ha / single says what the second API process buys on this machine. Exit 1 when a run
was lost or doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

from bench.common import REPO, log, machine, run_and_report
from bench.doc import brief_machine_lines, framed, markers
from bench.server import free_port

MARKERS = markers("ha-bench", "bench/ha_bench.py")
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/14"
CONCURRENCY = 20
WORKER_SLOTS = 8
POOL = "warm"
TEMPLATE = REPO / "tests" / "fixtures" / "project"


def _registry(started: Path) -> dict[str, Any]:
    return {
        "automates": [
            {
                "name": "burst",
                "kind": "oneshot",
                "caste": "horlogers",
                "family": "exports",
                "description": "HA benchmark: records its start",
                "command": ["scripts/count.sh", str(started), "0"],
                "concurrency": "allow",
                "concurrency_limit": None,
                # In-process runs: the server's orchestration bounds the throughput, not one
                # Python start-up per run (the guard benchmark measures that path).
                "work_pool": POOL,
            }
        ]
    }


def _database(name: str, *, drop: bool = False) -> str:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            connection.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _cli(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "automates.cli", *args, "--json"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"automates {' '.join(args)}: {done.stdout}{done.stderr}")
    return json.loads(done.stdout)


async def _burst(api: str, runs: int) -> tuple[float, float, list[str]]:
    """(seconds to create the runs, seconds until all Completed, their ids)."""
    from prefect.client.schemas.actions import WorkPoolUpdate
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from automates.server.client import prefect_client

    async with prefect_client(api) as client:
        await client.update_work_pool(POOL, WorkPoolUpdate(concurrency_limit=WORKER_SLOTS))
        deployment = await client.read_deployment_by_name("script/burst")
        slots = asyncio.Semaphore(CONCURRENCY)

        async def create() -> str:
            async with slots:
                run = await client.create_flow_run_from_deployment(deployment.id)
                return str(run.id)

        began = time.perf_counter()
        ids = await asyncio.gather(*(create() for _ in range(runs)))
        created = time.perf_counter() - began
        pending = set(ids)
        while pending:
            await asyncio.sleep(1)
            for chunk in [sorted(pending)[i : i + 200] for i in range(0, len(pending), 200)]:
                found = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        id=FlowRunFilterId(any_=[UUID(i) for i in chunk])
                    ),
                    limit=200,
                )
                for run in found:
                    if run.state is None or not run.state.is_final():
                        continue
                    if run.state_name != "Completed":
                        raise RuntimeError(f"run {run.id} ended {run.state_name}")
                    pending.discard(str(run.id))
        finished = time.perf_counter() - began
    return created, finished, ids


def profile(name: str, runs: int, folder: Path) -> dict[str, Any]:
    checkout = folder / name / "checkout"
    shutil.copytree(TEMPLATE, checkout)
    (checkout / "deployments").mkdir()
    started = folder / name / "started.txt"
    (checkout / "deployments" / "registry.yaml").write_text(yaml.safe_dump(_registry(started)))
    database = f"automates_ha_bench_{name}"
    port = free_port()
    env = {
        **os.environ,
        "AUTOMATES_PROJECT_ROOT": str(checkout),
        "AUTOMATES_DATA_DIR": str(folder / name / "data"),
        "AUTOMATES_SERVER_PORT": str(port),
        "AUTOMATES_DATABASE_URL": _database(database),
    }
    if name == "ha":
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        env.update(AUTOMATES_REDIS_URL=REDIS_URL, AUTOMATES_API_WORKERS="2")
    try:
        log(f"{name}: automates up")
        _cli(env, "up")
        log(f"{name}: {runs} runs")
        created, finished, ids = asyncio.run(_burst(f"http://127.0.0.1:{port}/api", runs))
    finally:
        log(f"{name}: automates down")
        subprocess.run(
            [sys.executable, "-m", "automates.cli", "down"], env=env, cwd=REPO,
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip
        _database(database, drop=True)
    counts = Counter(line.split()[0] for line in started.read_text().splitlines() if line)
    return {
        "runs": runs,
        "create_seconds": round(created, 2),
        "requests_per_second": round(runs / created, 1),
        "complete_seconds": round(finished, 1),
        "runs_per_minute": round(runs / finished * 60, 1),
        "lost": sum(1 for i in ids if counts[i] == 0),
        "doubled": sum(1 for i in ids if counts[i] > 1),
    }


def run(runs: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="automates-ha-bench-") as folder:
        for name in ("single", "ha"):
            result[name] = profile(name, runs, Path(folder))
    single, ha = result["single"], result["ha"]
    result["ratio"] = {
        "requests_per_second": round(ha["requests_per_second"] / single["requests_per_second"], 2),
        "runs_per_minute": round(ha["runs_per_minute"] / single["runs_per_minute"], 2),
    }
    result["exactly_once"] = all(p["lost"] == p["doubled"] == 0 for p in (single, ha))
    return result


def section(r: dict[str, Any]) -> str:
    single, ha = r["single"], r["ha"]

    def row(name: str, p: dict[str, Any]) -> str:
        return (
            f"| {name} | {p['requests_per_second']} | {p['runs_per_minute']} | {p['lost']} | "
            f"{p['doubled']} |"
        )

    return framed(
        MARKERS,
        "Highly available profile: a burst of triggered runs",
        [
            f"Measured {r['date']} by `bench/ha_bench.py`: {single['runs']} runs of one script",
            "automate created through the API, 20 requests at a time, on `automates up` with",
            "this machine's PostgreSQL: the single-process server, then the HA profile (two API",
            f"processes, a services process, Redis). The warm (in-process) worker, {WORKER_SLOTS}",
            "runs at once (the pool's limit), so the server's orchestration bounds the rate, not",
            "a Python start-up per run. Runs per minute: from the first request until every run",
            "is Completed. Lost / doubled: runs whose command did not start, or started twice.",
            "",
            "| Profile | API requests/s | Runs completed/min | Lost | Doubled |",
            "|---|---:|---:|---:|---:|",
            row("single process", single),
            row("HA (2 API processes)", ha),
            "",
            f"Ratio HA / single: {r['ratio']['requests_per_second']}x requests per second, "
            f"{r['ratio']['runs_per_minute']}x runs per minute. On 2 cores the API processes",
            "share the CPU with the database, Redis and the runs themselves, so a second API",
            "process buys availability (one can die while the other serves), not throughput;",
            "each run's state changes go through the API, so runs per minute follow it.",
        ],
        brief_machine_lines(r["machine"]),
        "Reproduce: `uv run python -m bench.ha_bench` (needs PostgreSQL and Redis).",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    run_and_report(
        parser,
        lambda args: run(args.runs),
        "ha",
        section,
        MARKERS,
        lambda r: r["exactly_once"],
    )


if __name__ == "__main__":
    main()
