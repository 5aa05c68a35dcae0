"""Benchmark: agent task run dispatch latency, the agent dispatcher against Prefect's default
process worker, same flow, same server, same run.

    uv run python bench/dispatch_bench.py            # run, print JSON, rewrite its doc section
    uv run python bench/dispatch_bench.py --no-doc   # run and print JSON only
    uv run python bench/dispatch_bench.py --runs 20 --baseline-runs 10

Dispatch latency is from the request (the task run row's `requested_at`, written just before
the flow run is created, as `automates task-run start` does) to the LLM CLI process started
(`started_at`, written right after the spawn returns). The CLI is the fake CLI (success mode).
Target (from the issue): p50 <= 0.8 s through the agent dispatcher. Exit 1 if missed.

Everything runs in a throw-away folder under /tmp: its own embedded PostgreSQL and Prefect
server on a free port, the checkout's registry synced to it; stopped at the end, also on error.
Runs are sequential: each request waits for the previous task run to end. Untimed warm-up runs
first on each path (the worker has started and polls; our dispatcher has imported the flow).
  1. the agent dispatcher (`python -m workers.agents`, polling every 0.25 s) on pool `agents`;
  2. the same flow deployed on a `process` pool served by Prefect's process worker with its
     default settings (polling every 10 s), the path every other deployment takes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

if (_checkout := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _checkout)  # run as a script: the imports below need the checkout

from bench import server
from bench.common import REPO, log, run_and_report, spread
from bench.doc import framed, machine_lines, markers, met_or_not
from bench.server import PROCESS_POOL

TARGET_P50 = 0.8
MARKERS = markers("dispatch-bench", "bench/dispatch_bench.py")
BASELINE_DEPLOYMENT = "agent-task-run-process"
# What the baseline takes from agent-task-run: the same flow, job variables and guard, and its
# tags (the layer's workers run only deployments sync made: admission).
COPIED_FIELDS = (
    "flow_id",
    "entrypoint",
    "job_variables",
    "tags",
    "pull_steps",
    "parameter_openapi_schema",
)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work, data_dir, port = server.isolated_run("dispatchbench-", no_scheduler=True)
    os.environ.pop("PREFECT_WORKER_QUERY_SECONDS", None)  # Prefect's default for the baseline

    from automates.platform import components
    from automates.settings import Settings
    from automates.settings.groups import ServerSettings
    from automates.sync import sync

    settings = Settings(
        project_root=REPO,
        data_dir=data_dir,
        server=ServerSettings(port=port),
        work_pool=PROCESS_POOL,
    )
    result: dict[str, Any] = {"runs": args.runs, "baseline_runs": args.baseline_runs}
    started = time.perf_counter()
    with server.running_layer(settings, data_dir, work, args.keep, result) as database_url:
        settings = server.with_database(settings, database_url)
        log("automates sync: the checkout's registry, agent blocks, platform perimeter")
        asyncio.run(sync(settings, database_url))
        asyncio.run(_fake_cli_block(settings, work))
        asyncio.run(_baseline_deployment(settings))
        try:
            log("1. agent dispatcher")
            components.start_agent_dispatcher(settings)
            _latencies(settings, database_url, args.warmup, None)  # worker started and warm
            result["dispatcher"] = _latencies(settings, database_url, args.runs, None)
            components.worker(settings, settings.agent.pool).stop()
            log("2. Prefect's process worker, default settings")
            components.start_worker(settings, PROCESS_POOL)
            _latencies(settings, database_url, 1, BASELINE_DEPLOYMENT)  # worker polling
            result["process_worker"] = _latencies(
                settings, database_url, args.baseline_runs, BASELINE_DEPLOYMENT
            )
        finally:
            components.worker(settings, settings.agent.pool).stop()
            components.worker(settings, PROCESS_POOL).stop()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    p50 = result["dispatcher"]["p50"]
    result["target"] = {"p50_seconds": TARGET_P50, "met": p50 <= TARGET_P50}
    result["speedup_p50"] = round(result["process_worker"]["p50"] / p50, 1)
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


async def _fake_cli_block(settings: Any, work: Path) -> None:
    from automates.agents.llm_cli import LlmCli

    fake = REPO / "tests" / "fixtures" / "fake_claude" / "claude"
    wrapper = work / "claude"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {fake} "$@"\n')
    wrapper.chmod(0o755)
    await LlmCli(executable=str(wrapper)).asave(settings.llm.cli_block, overwrite=True)


async def _baseline_deployment(settings: Any) -> None:
    """The same flow, job variables and guard as agent-task-run, on a process pool."""
    from prefect.client.schemas.actions import DeploymentCreate

    from automates.server.client import prefect_client

    async with prefect_client(settings.api_url) as client:
        ours = await client.read_deployment_by_name("agent-task-run/agent-task-run")
        baseline = DeploymentCreate(
            name=BASELINE_DEPLOYMENT,
            work_pool_name=PROCESS_POOL,
            **{field: getattr(ours, field) for field in COPIED_FIELDS},
        )
        await client.create_deployment(**baseline.model_dump(exclude_unset=True))


def _latencies(
    settings: Any, database_url: str, runs: int, deployment: str | None
) -> dict[str, Any]:
    from sqlalchemy import text

    from automates.agents.taskruns import TaskRunRequest, new_task_run
    from automates.cli.taskrun_cmds import TASK_RUN_DEPLOYMENT
    from automates.server.client import prefect_client
    from automates.store.engine import make_engine, transaction

    name = f"agent-task-run/{deployment}" if deployment else TASK_RUN_DEPLOYMENT
    engine = make_engine(database_url)
    samples: list[float] = []

    async def request(task_run_id: Any, parameters: dict[str, Any]) -> None:
        async with prefect_client(settings.api_url) as client:
            target = await client.read_deployment_by_name(name)
            await client.create_flow_run_from_deployment(
                target.id, parameters={**parameters, "task_run_id": str(task_run_id)}
            )

    for index in range(runs):
        task = TaskRunRequest(
            codename=f"bench-{deployment or 'agents'}-{index}",
            agent="bench",
            prompt="Say hello.",
            template="research",
            perimeter="platform",
            timeout_seconds=120,
        )
        task_run_id = new_task_run(engine, task, settings)
        asyncio.run(request(task_run_id, task.model_dump(mode="json", exclude_none=True)))
        deadline = time.monotonic() + 180
        while True:
            with transaction(engine) as connection:
                row = connection.execute(
                    text(
                        "SELECT status, requested_at, started_at FROM automates.task_runs"
                        " WHERE id = :id"
                    ),
                    {"id": task_run_id},
                ).one()
            if row.status in ("completed", "failed", "timed_out", "over_budget", "cancelled"):
                break
            assert time.monotonic() < deadline, f"task run {task_run_id} never ended"
            time.sleep(0.1)
        assert row.status == "completed" and row.started_at, f"task run {task_run_id}: {row}"
        samples.append((row.started_at - row.requested_at).total_seconds())
        log(f"   {index + 1}/{runs}: {samples[-1]:.3f} s")
    engine.dispose()
    return {"samples": [round(s, 3) for s in samples], **spread(samples, 3)}


def section(r: dict[str, Any]) -> str:
    d, p = r["dispatcher"], r["process_worker"]
    return framed(
        MARKERS,
        "Agent task run dispatch latency",
        [
            f"Measured {r['date']} by `bench/dispatch_bench.py`: a task run requested (row",
            "written, flow run created, as `automates task-run start` does) until the LLM CLI",
            "process started (the fake CLI), sequential runs, same flow and guard, one server.",
            "",
            "| Path | Runs | p50 (s) | p99 (s) | min (s) | max (s) |",
            "|---|---:|---:|---:|---:|---:|",
            f"| Agent dispatcher (in-process, polls every 0.25 s) | {r['runs']} | {d['p50']} |"
            f" {d['p99']} | {d['min']} | {d['max']} |",
            f"| Prefect process worker, default settings (polls every 10 s, fresh Python)"
            f" | {r['baseline_runs']} | {p['p50']} | {p['p99']} | {p['min']} | {p['max']} |",
            "",
            f"Target p50 <= {TARGET_P50} s through the dispatcher: {met_or_not(r['target']['met'])}"
            f" ({r['speedup_p50']}x faster than the process worker at p50).",
        ],
        machine_lines(r),
        "Reproduce: `uv run python bench/dispatch_bench.py`.",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--baseline-runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--keep", action="store_true")
    run_and_report(parser, run, "dispatch_bench", section, MARKERS, lambda r: r["target"]["met"])


if __name__ == "__main__":
    main()
