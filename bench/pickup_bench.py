"""Benchmark: from a run's trigger to the first statement of its flow body, on four workers of
the same server in one run (issue 19), with each worker's idle memory and CPU per run.

    uv run python bench/pickup_bench.py              # about 20 minutes; rewrites its doc section
    uv run python bench/pickup_bench.py --no-doc --runs 5 --warmup 1   # a quick look

Everything runs in a throw-away folder under /tmp: its own embedded PostgreSQL and Prefect
server (with its scheduler, as `automates up` runs it) on a free port, a project of four
oneshot automates running the probe flow (its first statement writes `time.time()`), one per
pool, synced with `automates sync`. Phases, in this order, each with only its own worker up:

a. Prefect's process worker, default settings: `prefect worker start --pool P --type process`
   (polls every 10 s, a fresh Python per run);
b. the same, tuned: PREFECT_WORKER_QUERY_SECONDS=1;
c. the layer's default worker, `python -m workers.process --pool P` (fast start: the server's
   event stream, each run forked from the run launcher), once its log says the launcher is
   ready;
d. the warm in-process worker, `python -m workers.warm --pool warm`.

Each phase: the worker started and seen online, `--warmup` untimed runs, then `--runs`
sequential triggers, one at a time: the bench notes `time.time()` and calls the API's
`create_flow_run_from_deployment` (what `prefect deployment run` does), waits for the body's
line, then for the run's final state, then pauses 0.2-1 s (random, seeded: no lock-step with
a polling loop). Where the time goes comes from each run's logs and states on the server:
the worker's "submitting" and "submitted to infrastructure" lines, the first line after them
(the engine's), the Running state, the body. After the runs, the worker idles `--idle-seconds`:
its idle CPU, then RSS/PSS of the worker with its children (the launcher) and of the whole
layer (embedded PostgreSQL, server, worker), read from /proc (bench/procfs.py). CPU per run is
the worker's tree's CPU (its own, and its reaped children's: the runs) over the timed runs.

Targets (from the issue): the default worker p50 <= 0.5 s and p99 <= 1 s (exit 1 if missed);
the layer idle under 1 GB RSS (reported).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if (_checkout := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _checkout)  # run as a script: the imports below need the checkout

from bench import procfs, server
from bench.common import log, run_and_report, spread
from bench.doc import framed, machine_lines, markers, met_or_not

TARGET_P50, TARGET_P99 = 0.5, 1.0
LAYER_BUDGET_MIB = 1024
MARKERS = markers("pickup-bench", "bench/pickup_bench.py")
# key: (pool, label in the doc)
PATHS = {
    "prefect": ("pickup-prefect", "a. Prefect process worker, default settings (polls 10 s)"),
    "prefect_tuned": ("pickup-prefect-tuned", "b. Prefect process worker, polling 1 s"),
    "fast": ("pickup-fast", "c. **`workers.process`, fast start (the new default)**"),
    "warm": ("warm", "d. warm in-process worker (`workers.warm`)"),
}
MILESTONES = ("submitting", "submitted", "engine_first_log", "running", "body")
RUN_TIMEOUT = 120.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    work, data_dir, port = server.isolated_run("pickupbench-", no_scheduler=False)
    os.environ.pop("PREFECT_WORKER_QUERY_SECONDS", None)  # each phase says its own

    from bench import probe

    project = probe.make_project(work)
    from automates.platform import components
    from automates.settings import Settings
    from automates.settings.groups import ServerSettings
    from automates.sync import sync

    settings = Settings(project_root=project, data_dir=data_dir, server=ServerSettings(port=port))
    result: dict[str, Any] = {"runs": args.runs, "warmup": args.warmup, "phases": {}}
    started = time.perf_counter()
    with server.running_layer(settings, data_dir, work, args.keep, result) as database_url:
        settings = server.with_database(settings, database_url)
        records = {key: work / f"record-{key}.txt" for key in PATHS}
        probe.write_registry(
            settings,
            [probe.declaration(_name(k), PATHS[k][0], records[k]) for k in PATHS],
        )
        log("automates sync: four oneshot probes, one per pool")
        asyncio.run(sync(settings, database_url))
        deployments = asyncio.run(_deployments(settings, project))
        try:
            for key in args.paths:
                result["phases"][key] = _phase(
                    settings, data_dir, key, deployments[key], records[key], args
                )
        finally:
            for pool, _ in PATHS.values():
                components.worker(settings, pool).stop()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    fast = result["phases"].get("fast")
    result["target"] = {
        "p50_seconds": TARGET_P50,
        "p99_seconds": TARGET_P99,
        "met": bool(fast) and fast["p50"] <= TARGET_P50 and fast["p99"] <= TARGET_P99,
        "layer_budget_mib": LAYER_BUDGET_MIB,
        "layer_met": bool(fast) and fast["layer_idle"]["rss_mib"] < LAYER_BUDGET_MIB,
    }
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


async def _deployments(settings: Any, project: Path) -> dict[str, Any]:
    """Each phase's deployment id. Prefect's own worker starts a run in a temporary folder (the
    layer's starts it in its checkout): its two deployments name the project's folder."""
    from prefect.client.schemas.actions import DeploymentUpdate

    from automates.server.client import prefect_client

    found = {d.name: d for d in await server.server_deployments(settings.api_url)}
    async with prefect_client(settings.api_url) as client:
        for key in ("prefect", "prefect_tuned"):
            deployment = found[_name(key)]
            variables = {**(deployment.job_variables or {}), "working_dir": str(project)}
            await client.update_deployment(deployment.id, DeploymentUpdate(job_variables=variables))
    return {key: found[_name(key)].id for key in PATHS}


def _name(key: str) -> str:
    return f"pickup-{key.replace('_', '-')}"


def _phase(
    settings: Any, data_dir: Path, key: str, deployment_id: Any, record: Path, args: Any
) -> dict[str, Any]:
    from automates.platform import components
    from automates.store import embedded_pg
    from bench import probe

    pool, label = PATHS[key]
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    log(f"phase {label}: starting its worker (load {load_at_start})")
    if key == "prefect":
        probe.start_prefect_worker(settings, pool, None)
    elif key == "prefect_tuned":
        probe.start_prefect_worker(settings, pool, 1)
    elif key == "fast":
        probe.start_layer_worker(probe.with_fast_start(settings, True), pool)
    else:
        components.start_warm_worker(settings, pool)
    probe.wait_online(settings.api_url, pool)
    worker = components.worker(settings, pool).pid()
    assert worker is not None, f"the worker on {pool} is not running"
    rng = random.Random(19)
    asyncio.run(_trigger(settings, deployment_id, record, args.warmup, rng))
    cpu_before, clock = procfs.cpu_seconds(worker), time.monotonic()
    runs = asyncio.run(_trigger(settings, deployment_id, record, args.runs, rng))
    time.sleep(2)  # the last run's process exits and is reaped
    cpu_runs, seconds = procfs.cpu_seconds(worker) - cpu_before, time.monotonic() - clock - 2
    log(f"phase {label}: idle {args.idle_seconds} s")
    idle_before = procfs.cpu_seconds(worker)
    time.sleep(args.idle_seconds)
    idle_rate = (procfs.cpu_seconds(worker) - idle_before) / args.idle_seconds
    postgres = int((embedded_pg.pgdata(data_dir) / "postmaster.pid").read_text().split()[0])
    prefect_server = components.server(settings).pid()
    assert prefect_server is not None
    latencies = [r["body"] - r["triggered"] for r in runs]
    phase = {
        "pool": pool,
        **spread(latencies, 3),
        "samples": [round(x, 3) for x in latencies],
        "states": sorted({r["state"] for r in runs}),
        "cpu_per_run": round(cpu_runs / len(runs), 3),
        "cpu_per_run_net_of_idle": round((cpu_runs - idle_rate * seconds) / len(runs), 3),
        "idle_cpu_percent": round(100 * idle_rate, 2),
        "worker_idle": procfs.memory_mib([worker]),
        "layer_idle": procfs.memory_mib([postgres, prefect_server, worker]),
        "layer_parts_rss_mib": {
            name: procfs.memory_mib([pid])["rss_mib"]
            for name, pid in (("postgres", postgres), ("server", prefect_server))
        },
        "milestones": asyncio.run(milestones(settings.api_url, runs)),
        "load_average": {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]},
    }
    if key == "fast":
        phase.update(probe.launcher_log_counts(settings, pool))
    components.worker(settings, pool).stop()
    log(f"phase {label}: p50 {phase['p50']} s, p99 {phase['p99']} s, {phase['milestones']}")
    return phase


async def _trigger(
    settings: Any, deployment_id: Any, record: Path, count: int, rng: random.Random
) -> list[dict[str, Any]]:
    """`count` runs one at a time: trigger, body's line, final state, a short pause."""
    from automates.server.client import prefect_client
    from bench import probe

    runs = []
    async with prefect_client(settings.api_url) as client:
        for index in range(count):
            triggered = time.time()
            flow_run = await client.create_flow_run_from_deployment(deployment_id)
            body, deadline = None, time.monotonic() + RUN_TIMEOUT
            while body is None:
                body = next((s for i, _, s in probe.bodies(record) if i == str(flow_run.id)), None)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"run {flow_run.id}: no body after {RUN_TIMEOUT:g} s")
                await asyncio.sleep(0.01)
            while not (state := (await client.read_flow_run(flow_run.id)).state) or not (
                state.is_final()
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"run {flow_run.id}: not finished after {RUN_TIMEOUT:g} s")
                await asyncio.sleep(0.1)
            runs.append(
                {"id": flow_run.id, "triggered": triggered, "body": body, "state": state.name}
            )
            log(f"   {index + 1}/{count}: {body - triggered:.3f} s ({state.name})")
            await asyncio.sleep(rng.uniform(0.2, 1.0))
    return runs


async def milestones(api_url: str, runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """The median time after the trigger of each step of a run, from its logs and states."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    from automates.server.client import prefect_client

    found: dict[str, list[float]] = {name: [] for name in MILESTONES}
    async with prefect_client(api_url) as client:
        for r in runs:
            logs = await client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[r["id"]])),
                sort=LogSort.TIMESTAMP_ASC,
            )
            states = await client.read_flow_run_states(r["id"])
            at: dict[str, float] = {"body": r["body"]}
            for entry in logs:
                moment = entry.timestamp.timestamp()
                if "submitting flow run" in entry.message:
                    at.setdefault("submitting", moment)
                elif "submitted to infrastructure" in entry.message:
                    at.setdefault("submitted", moment)
                elif not entry.name.endswith("worker"):
                    at.setdefault("engine_first_log", moment)
            for state in states:
                if state.type.value == "RUNNING":
                    at.setdefault("running", state.timestamp.timestamp())
            for name, moment in at.items():
                found[name].append(moment - r["triggered"])
    return {n: round(statistics.median(v), 3) if v else None for n, v in found.items()}


def section(r: dict[str, Any]) -> str:
    phases = r["phases"]
    fast = phases.get("fast", {})

    def seconds(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    latency, steps, cost, loads = [], [], [], []
    for key, p in phases.items():
        label = PATHS[key][1]
        ratio = f"{p['p50'] / fast['p50']:.1f}x" if fast and fast["p50"] else "—"
        latency.append(
            f"| {label} | {len(p['samples'])} | {p['p50']} | {p['p99']} | {p['min']} |"
            f" {p['max']} | {ratio} |"
        )
        loads.append(
            f"{label.split('.')[0]}. {', '.join(map(str, p['load_average']['start']))}"
            f" → {', '.join(map(str, p['load_average']['end']))}"
        )
        m = p["milestones"]
        steps.append(f"| {label} | {' | '.join(seconds(m[name]) for name in MILESTONES)} |")
        w, layer = p["worker_idle"], p["layer_idle"]
        cost.append(
            f"| {label} | {w['rss_mib']} / {w['pss_mib']} ({w['processes']}) |"
            f" {layer['rss_mib']} / {layer['pss_mib']} | {p['cpu_per_run']} |"
            f" {p['cpu_per_run_net_of_idle']} | {p['idle_cpu_percent']} |"
        )
    t = r["target"]
    launcher = (
        f"launcher ready {fast['launcher_ready']} time(s), runs it refused "
        f"{fast['launcher_refused']}"
        if fast
        else "no fast phase"
    )
    return framed(
        MARKERS,
        "Pickup: trigger to the first statement of the flow body",
        [
            f"Measured {r['date']} by `bench/pickup_bench.py`: {r['runs']} sequential triggers",
            "per worker (the API's `create_flow_run_from_deployment`, as `prefect deployment",
            "run` does; the trigger time noted just before the call) until the probe flow's",
            "first statement, through the guard, each worker alone on the same server in one",
            f"run, after {r['warmup']} untimed warm-up runs. Ratio: the row's p50 over the new",
            "default's.",
            "",
            "| Worker | Runs | p50 (s) | p99 (s) | min (s) | max (s) | p50 vs new default |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *latency,
            "",
            f"Target for the new default: p50 <= {TARGET_P50} s and p99 <= {TARGET_P99} s:"
            f" {met_or_not(t['met'])}.",
            "",
            "Where the time goes (median seconds after the trigger, from each run's logs and",
            "states on the server; client clocks, one machine): the worker's `submitting` line",
            "(picked up), `submitted to infrastructure` (its process exists), the first log",
            "line after that (the engine's), the Running state, the body.",
            "",
            "| Worker | submitting | submitted | engine's first line | Running | body |",
            "|---|---:|---:|---:|---:|---:|",
            *steps,
            "",
            "Cost: idle after the phase (MiB, RSS / PSS, read from /proc; the worker with its",
            "children, i.e. the run launcher; the layer is the embedded PostgreSQL, the",
            "Prefect server and that worker), and CPU seconds per run of the worker's",
            "process tree (its own and its reaped children's, the runs included), gross and",
            "net of the worker's idle rate over the phase.",
            "",
            "| Worker | Worker idle RSS / PSS (processes) | Layer idle RSS / PSS |"
            " CPU s per run | net of idle | Worker idle CPU % |",
            "|---|---:|---:|---:|---:|---:|",
            *cost,
            "",
            f"Budget: the layer idle under {LAYER_BUDGET_MIB} MiB RSS with the new default:"
            f" {met_or_not(t['layer_met'])}{_parts(fast)}. New default's {launcher}.",
            "",
            f"Load average (1, 5, 15 min) at each phase's start → end: {'; '.join(loads)}.",
        ],
        machine_lines(r),
        "Reproduce: `uv run python bench/pickup_bench.py`.",
    )


def _parts(phase: dict[str, Any]) -> str:
    """What the layer's idle RSS is made of, when the run recorded it."""
    parts = phase.get("layer_parts_rss_mib")
    if not parts:
        return ""
    return (
        f" (PostgreSQL with its backends {parts['postgres']} MiB, the server"
        f" {parts['server']} MiB, the worker and launcher {phase['worker_idle']['rss_mib']} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50, help="timed triggers per worker")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--keep", action="store_true")
    run_and_report(parser, run, "pickup_bench", section, MARKERS, lambda r: r["target"]["met"])


if __name__ == "__main__":
    main()
