"""Benchmark: the storm of late runs after an outage, and the manual run triggered as the layer
comes back (issue 19, item 4), on the layer's process worker with and without settling before
the process (automates/platform/before_start.py, decision 0052).

    uv run python bench/storm_bench.py            # 5-10 minutes; rewrites its doc section
    uv run python bench/storm_bench.py --no-doc --automates 2 --ticks 5   # a quick look

Everything runs in a throw-away folder under /tmp: its own embedded PostgreSQL and Prefect
server on a free port (the scheduler service off: the only runs are the bench's own), a
project of the probe flow (its first statement writes `time.time()`: bench/probe.py) on one
pool, synced with `automates sync`: for each phase, `--automates` (K) every-minute automates
of its own (the same ticks in both phases would share the scheduler's idempotency keys) with
the default misfire policy (`skip`, 60 s of grace), and one on-demand automate, the manual
run, shared by both phases. Two phases, one after the other, each with a fresh worker
(`python -m workers.process`, fast start, its run launcher ready):

- **baseline**: the same worker with settling before the process turned off: started through
  a wrapper (`baseline_worker` below) that makes both places the worker asks answer "this run
  needs its process" (`SettleFirstMixin._decide_due` deciding none of a fetch, `settle`
  answering None) before it runs `workers.process`'s main;
- **new**: the worker as shipped.

Each phase: the pool paused (as in tests/fixtures/misfire.py: no worker takes its runs, as in
an outage), the worker started and ready, then `--ticks` (M) late runs of each of its phase's
K automates, made as Prefect's scheduler makes them (`as_scheduler_makes`: Scheduled at the
past minutes 2 to M+1 before, tagged `auto-scheduled`, idempotency key `scheduled <deployment>
<schedule> <tick>`), N = K x M in all. Then, in one client, the pool resumed and at once the
manual run triggered through the API's `create_flow_run_from_deployment` (as `prefect
deployment run`). Measured: (a) the manual run's trigger to its body's first statement;
(b) the resume to the last late run's end (its end time on the server); (c) how many late
runs got a process (`infrastructure_pid` set) and their final states; (d) CPU seconds of the
worker's process tree (its own and its reaped children's: the launcher and the runs it forked)
from just before the resume until every run ended (plus 2 s for the last exits), with the
server's and PostgreSQL's beside it, read from /proc (bench/procfs.py), and the most
processes the worker's tree held at once. Where the manual run's time went comes from its
logs and states on the server (pickup_bench's milestones).

Target (from the issue): in the new phase no late run gets a process, every one ends Skipped,
and the manual run completes (exit 1 if not). The manual run's latency and the CPU are
reported with their ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

if (_checkout := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _checkout)  # run as a script: the imports below need the checkout

from bench import procfs, server
from bench.common import log, run_and_report
from bench.doc import framed, machine_lines, markers, met_or_not

MARKERS = markers("storm-bench", "bench/storm_bench.py")
POOL = "storm"
MANUAL = "storm-manual"
PHASES = {
    "baseline": "baseline: settling before the process turned off",
    "new": "**new: as shipped**",
}
# After its launcher is ready, the worker subscribes to the server's events and syncs with
# the pool: a short pause, so that neither phase's trigger races its worker's start.
WORKER_SETTLE_SECONDS = 5.0
REAP_SECONDS = 2.0
# The worker for the baseline: `workers.process`'s main with settling before the process off.
BASELINE_WORKER = (
    f"import sys; sys.path.insert(0, {_checkout!r}); "
    "from bench.storm_bench import baseline_worker; baseline_worker()"
)


def baseline_worker() -> None:
    """`python -m workers.process` (its arguments in sys.argv) with the early settling turned
    off: every run starts its process, whose guard decides, as before decision 0052."""
    from workers import process

    # What main sets before Prefect reads its settings, here before the import below reads
    # them (main's own setdefault then changes nothing).
    os.environ.setdefault("PREFECT_WORKER_QUERY_SECONDS", str(process.FAST_POLL_SECONDS))
    from automates.platform import before_start

    async def needs_its_process(worker: Any, flow_run: Any, env: Any) -> None:
        return None

    async def none_decided(worker: Any, fetched: Any) -> dict[Any, Any]:
        return {}

    # Both places the worker asks: as it fetches, and as it would start a run's process.
    before_start.settle = needs_its_process
    before_start.SettleFirstMixin._decide_due = none_decided  # type: ignore[method-assign,assignment]
    process.main(sys.argv[1:])


def run(args: argparse.Namespace) -> dict[str, Any]:
    work, data_dir, port = server.isolated_run("stormbench-", no_scheduler=True)
    os.environ.pop("PREFECT_WORKER_QUERY_SECONDS", None)  # the worker sets its own

    from bench import probe

    project = probe.make_project(work)
    from automates.platform import components
    from automates.settings import Settings
    from automates.settings.groups import ServerSettings
    from automates.sync import sync

    settings = Settings(project_root=project, data_dir=data_dir, server=ServerSettings(port=port))
    settings = probe.with_fast_start(settings, True)
    result: dict[str, Any] = {
        "automates": args.automates,
        "ticks": args.ticks,
        "late_runs": args.automates * args.ticks,
        "phases": {},
    }
    started = time.perf_counter()
    with server.running_layer(settings, data_dir, work, args.keep, result) as database_url:
        settings = server.with_database(settings, database_url)
        records = {"manual": work / "record-manual.txt", "late": work / "record-late.txt"}
        declared = [probe.declaration(MANUAL, POOL, records["manual"])]
        for key in PHASES:
            declared += [
                probe.declaration(
                    _late_name(key, index),
                    POOL,
                    records["late"],
                    kind="recurring",
                    description="every-minute automate, late after an outage",
                    schedules=[{"cron": "* * * * *"}],
                )
                for index in range(args.automates)
            ]
        probe.write_registry(settings, declared)
        log(f"automates sync: {len(PHASES)} x {args.automates} every-minute automates, 1 manual")
        asyncio.run(sync(settings, database_url))
        found = {d.name: d for d in asyncio.run(server.server_deployments(settings.api_url))}
        try:
            for key in PHASES:
                late = [found[_late_name(key, i)] for i in range(args.automates)]
                result["phases"][key] = _phase(
                    settings, data_dir, key, late, found[MANUAL].id, records, args
                )
        finally:
            components.worker(settings, POOL).stop()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    result["ratios"] = _ratios(result["phases"])
    new = result["phases"].get("new")
    result["target"] = {
        "met": bool(new)
        and new["late_with_process"] == 0
        and new["late_states"] == {"Skipped": result["late_runs"]}
        and new["manual"]["state"] == "Completed"
    }
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


def _late_name(key: str, index: int) -> str:
    return f"storm-{key}-{index:02d}"


def _phase(
    settings: Any,
    data_dir: Path,
    key: str,
    late: list[Any],
    manual: Any,
    records: dict[str, Path],
    args: Any,
) -> dict[str, Any]:
    from automates.platform import components
    from automates.store import embedded_pg
    from bench import probe
    from bench.pickup_bench import milestones
    from tests.fixtures.misfire import as_scheduler_makes

    label = PHASES[key]
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    logged = probe.launcher_log_counts(settings, POOL)  # the log file is shared by the phases
    _start_worker(settings, key)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # Past their grace (60 s) by the time anything asks.
    ticks = [now - timedelta(minutes=m) for m in range(args.ticks + 1, 1, -1)]
    log(f"phase {label}: {len(late)} x {len(ticks)} late runs, as Prefect's scheduler makes them")
    for deployment in late:
        as_scheduler_makes(settings, deployment, ticks)
    worker = components.worker(settings, POOL).pid()
    prefect_server = components.server(settings).pid()
    assert worker is not None and prefect_server is not None, "the worker or server is down"
    postgres = int((embedded_pg.pgdata(data_dir) / "postmaster.pid").read_text().split()[0])
    trees = {"worker": worker, "server": prefect_server, "postgres": postgres}
    cpu_before = {name: procfs.cpu_seconds(pid) for name, pid in trees.items()}
    log(f"phase {label}: resuming the pool and triggering the manual run")
    with _MostProcesses(worker) as most:
        storm = asyncio.run(_storm(settings, [d.id for d in late], manual, records, args.timeout))
        time.sleep(REAP_SECONDS)
    cpu = {name: procfs.cpu_seconds(pid) - cpu_before[name] for name, pid in trees.items()}
    components.worker(settings, POOL).stop()
    late_runs, manual_run = storm.pop("late"), storm["manual"]
    assert len(late_runs) == len(late) * len(ticks), f"{len(late_runs)} late runs on the server"
    manual_run["milestones"] = asyncio.run(milestones(settings.api_url, [manual_run.pop("run")]))
    phase = {
        **storm,
        "late_runs": len(late_runs),
        "late_with_process": sum(1 for r in late_runs if r.infrastructure_pid),
        "late_states": dict(Counter(r.state.name for r in late_runs)),
        "late_bodies_run": sum(1 for _ in probe.bodies(records["late"])),
        "cpu_seconds": {name: round(seconds, 2) for name, seconds in cpu.items()},
        "worker_tree_most_processes": most.count,
        "worker_log": {
            name: count - logged[name]
            for name, count in probe.launcher_log_counts(settings, POOL).items()
        },
        "load_average": {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]},
    }
    log(
        f"phase {label}: manual run {manual_run['body_seconds']} s to its body, late runs"
        f" final after {phase['late_final_seconds']} s, {phase['late_with_process']} with a"
        f" process, states {phase['late_states']}, worker CPU {phase['cpu_seconds']['worker']} s"
    )
    return phase


def _start_worker(settings: Any, key: str) -> None:
    """The pool paused, a fresh worker on it, ready: its launcher, its heartbeat, a pause."""
    from automates.platform import components
    from bench import probe
    from tests.fixtures.misfire import pause_pool

    log(f"phase {PHASES[key]}: pool paused, starting a fresh worker")
    pause_pool(settings, POOL, paused=True)
    if key == "baseline":
        shipped = components.worker_launch(settings, POOL)
        assert shipped.argv[1:3] == ["-m", "workers.process"], shipped.argv
        wrapped = components.Launch(
            [sys.executable, "-c", BASELINE_WORKER, *shipped.argv[3:]], shipped.env
        )
        with mock.patch.object(components, "worker_launch", lambda *_: wrapped):
            probe.start_layer_worker(settings, POOL)
    else:
        probe.start_layer_worker(settings, POOL)
    probe.wait_online(settings.api_url, POOL)
    time.sleep(WORKER_SETTLE_SECONDS)


class _MostProcesses(threading.Thread):
    """The most processes the tree under `root` held at once (the worker, its launcher, the
    runs' processes), counted every second while in its `with` block."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.count = root, 0
        self._done = threading.Event()

    def run(self) -> None:
        while True:
            self.count = max(self.count, len(procfs.tree(self.root)))
            if self._done.wait(1.0):
                return

    def __enter__(self) -> _MostProcesses:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self.join()


async def _storm(
    settings: Any, late: list[Any], manual: Any, records: dict[str, Path], timeout: float
) -> dict[str, Any]:
    """Resume the pool, trigger the manual run at once, wait for its body, then until every
    run on the pool has ended."""
    from prefect.client.schemas.actions import WorkPoolUpdate

    from automates.server.client import prefect_client
    from bench import probe

    async with prefect_client(settings.api_url) as client:
        resumed = time.time()
        await client.update_work_pool(POOL, WorkPoolUpdate(is_paused=False))
        triggered = time.time()
        flow_run = await client.create_flow_run_from_deployment(manual)
        deadline = time.monotonic() + timeout
        body = None
        while body is None:
            body = next(
                (s for i, _, s in probe.bodies(records["manual"]) if i == str(flow_run.id)), None
            )
            _check(deadline, timeout, "the manual run's body")
            await asyncio.sleep(0.02)
        log(f"   manual run: body {body - triggered:.3f} s after its trigger")
        while True:
            runs = await _runs(client, late)
            manual_run = await client.read_flow_run(flow_run.id)
            waiting = [r for r in runs if not (r.state and r.state.is_final())]
            if not waiting and manual_run.state and manual_run.state.is_final():
                break
            _check(deadline, timeout, f"{len(waiting)} late runs and the manual run to end")
            await asyncio.sleep(1.0)
    last_end = max(r.end_time.timestamp() for r in runs if r.end_time)
    assert manual_run.state is not None
    return {
        "manual": {
            "body_seconds": round(body - triggered, 3),
            "state": manual_run.state.name,
            "had_process": bool(manual_run.infrastructure_pid),
            "trigger_after_resume_seconds": round(triggered - resumed, 3),
            "run": {"id": flow_run.id, "triggered": triggered, "body": body},
        },
        "late_final_seconds": round(last_end - resumed, 1),
        "late": runs,
    }


def _check(deadline: float, timeout: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise RuntimeError(f"still waiting for {what} after {timeout:g} s")


async def _runs(client: Any, deployments: list[Any]) -> list[Any]:
    """Every run of `deployments`, page by page."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    only = DeploymentFilter(id=DeploymentFilterId(any_=deployments))
    found: list[Any] = []
    while page := await client.read_flow_runs(deployment_filter=only, limit=200, offset=len(found)):
        found.extend(page)
        if len(page) < 200:
            break
    return found


# The figures compared between the phases: (label, how to read it from a phase).
COMPARED = (
    ("Manual run: trigger → its body's first statement (s)", lambda p: p["manual"]["body_seconds"]),
    ("Resume → every late run ended (s)", lambda p: p["late_final_seconds"]),
    ("Late runs given a process", lambda p: p["late_with_process"]),
    ("Most processes at once in the worker's tree", lambda p: p["worker_tree_most_processes"]),
    ("CPU s, the worker's process tree (runs included)", lambda p: p["cpu_seconds"]["worker"]),
    ("CPU s, the Prefect server", lambda p: p["cpu_seconds"]["server"]),
    ("CPU s, PostgreSQL", lambda p: p["cpu_seconds"]["postgres"]),
)


def _ratios(phases: dict[str, Any]) -> dict[str, float | None]:
    """Each compared figure of the new phase over the baseline's."""
    if set(phases) != set(PHASES):
        return {}
    ratios: dict[str, float | None] = {}
    for label, figure in COMPARED:
        before, after = figure(phases["baseline"]), figure(phases["new"])
        ratios[label] = round(after / before, 3) if before else None
    return ratios


def section(r: dict[str, Any]) -> str:
    from bench.pickup_bench import MILESTONES

    phases = r["phases"]
    rows, steps = [], []
    for label, figure in COMPARED:
        ratio = r["ratios"].get(label)
        values = " | ".join(str(figure(phases[key])) if key in phases else "—" for key in PHASES)
        rows.append(f"| {label} | {values} | {'—' if ratio is None else f'{ratio:g}x'} |")
    for key, p in phases.items():
        at = [p["manual"]["milestones"][name] for name in MILESTONES]
        steps.append(f"| {key} | {' | '.join('—' if s is None else f'{s:.3f}' for s in at)} |")
    states = "; ".join(
        f"{key}: {', '.join(f'{n} {s}' for s, n in sorted(p['late_states'].items()))}"
        for key, p in phases.items()
    )
    loads = "; ".join(
        f"{key} {', '.join(map(str, p['load_average']['start']))}"
        f" → {', '.join(map(str, p['load_average']['end']))}"
        for key, p in phases.items()
    )
    return framed(
        MARKERS,
        "Outage storm: late runs after an outage, and a manual run beside them",
        [
            f"Measured {r['date']} by `bench/storm_bench.py`: the pool paused as in an outage,",
            f"then {r['late_runs']} late runs ({r['automates']} every-minute automates x"
            f" {r['ticks']} missed ticks, misfire",
            "policy `skip`, the default; each phase its own automates, the same ticks) made as",
            "Prefect's scheduler makes them (its service off: no other run); the pool resumed",
            "and, at once, one manual run triggered through the API",
            "(`create_flow_run_from_deployment`). Same server, a fresh `workers.process` worker",
            "(fast start, launcher ready) per phase, all on one pool. The **baseline is the",
            "same worker with settling before the process turned off** (both places it",
            'asks, in `automates/platform/before_start.py`, answering "this run needs its',
            'process"), so every late run gets a process whose guard ends it, as before',
            "decision 0052. Ratio: new over baseline.",
            "",
            "| Measure | Baseline (settling off) | New (as shipped) | New vs baseline |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            f"Late runs' final states: {states}.",
            "",
            "CPU is over the phase, from just before the resume until every run ended"
            f" (+{REAP_SECONDS:g} s),",
            "read from /proc: the worker's tree counts its own CPU, its run launcher's and the",
            "runs' it forked and reaped; its processes were counted every second over that span.",
            "",
            "Where the manual run's time goes (seconds after its trigger, from its logs and",
            "states on the server): the worker's `submitting` line (picked up), `submitted to",
            "infrastructure` (its process exists), the engine's first line, Running, the body.",
            "",
            "| Phase | submitting | submitted | engine's first line | Running | body |",
            "|---|---:|---:|---:|---:|---:|",
            *steps,
            "",
            "Target (issue 19): in the new phase no late run gets a process, all end Skipped",
            f"and the manual run completes: {met_or_not(r['target']['met'])}.",
            "",
            f"Load average (1, 5, 15 min) at each phase's start → end: {loads}.",
        ],
        machine_lines(r),
        "Reproduce: `uv run python bench/storm_bench.py`.",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--automates", type=int, default=5, help="every-minute automates (K)")
    parser.add_argument("--ticks", type=int, default=60, help="late runs of each (M)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a phase may take")
    parser.add_argument("--keep", action="store_true")
    run_and_report(parser, run, "storm_bench", section, MARKERS, lambda r: r["target"]["met"])


if __name__ == "__main__":
    main()
