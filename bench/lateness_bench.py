"""Benchmark: schedule lateness of every-minute automates, from the run's scheduled time to the
first line of its flow body, beside a bare subprocess launched at the same instants.

    uv run python bench/lateness_bench.py             # run, print JSON, rewrite its doc section
    uv run python bench/lateness_bench.py --no-doc --sizes 10 --minutes 2   # a quick look

Everything runs in a throw-away folder under /tmp: its own embedded PostgreSQL and Prefect
server (with Prefect's scheduler) on a free port, a generated project of every-minute
automates (`* * * * *`, a flow that writes `time.time()` as its first statement), synced with
`automates sync`. Phases, in one run:

1. the warm worker (`python -m workers.warm`: in-process, runs fetched 10 s ahead and started at
   their scheduled time) with N = 10, 20, 50 automates, each spread by its stable jitter
   (`jitter_seconds: 59`, the offset visible as the run's scheduled time), `--minutes` each;
2. the same worker with N = 50 and no jitter: all fire at :00 together (`--burst-minutes`);
3. Prefect's process worker, default settings (polls every 10 s, a fresh Python per run),
   with N = 10 (`--process-minutes`): the plain Prefect path.

Beside phases 1 and 2, a thread launches a bare `python -c` subprocess at each instant an
automate is scheduled and records when its first statement ran: the floor of starting code at
a given time on this machine, under the same load. Only ticks inside each phase's window count
(its first minute is left out: the scheduler and the worker settle). Target (from the issue):
p99 <= 1 s at N = 50. Exit 1 if missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if (_checkout := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _checkout)  # run as a script: the imports below need the checkout

from bench import server
from bench.common import log, run_and_report, spread
from bench.doc import framed, machine_lines, markers, met_or_not
from bench.server import PROCESS_POOL

TARGET_P99 = 1.0
MARKERS = markers("lateness-bench", "bench/lateness_bench.py")
WARM_POOL = "warm"
SETTLE_SECONDS = 60  # the first minute of a phase is not measured

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


def declarations(count: int, pool: str, jitter: int, record: Path) -> list[dict[str, Any]]:
    return [
        {
            "name": f"tick-{index:03d}",
            "kind": "recurring",
            "caste": "bench",
            "family": "bench",
            "description": "every-minute lateness probe",
            "entrypoint": "probe/tick.py:tick",
            "parameters": {"record": str(record)},
            "schedules": [{"cron": "* * * * *"}],
            "jitter_seconds": jitter,
            "work_pool": pool,
            "timeout_seconds": 60,
        }
        for index in range(count)
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    work, data_dir, port = server.isolated_run("latebench-", no_scheduler=False)
    project = work / "project"
    (project / "probe").mkdir(parents=True)
    (project / "deployments").mkdir()
    (project / "probe" / "tick.py").write_text(FLOW)

    from automates.platform import components
    from automates.settings import Settings
    from automates.settings.groups import ServerSettings

    settings = Settings(project_root=project, data_dir=data_dir, server=ServerSettings(port=port))
    result: dict[str, Any] = {"minutes": args.minutes, "phases": []}
    started = time.perf_counter()
    with server.running_layer(settings, data_dir, work, args.keep, result) as database_url:
        settings = server.with_database(settings, database_url)
        phases = [(n, WARM_POOL, 59, args.minutes) for n in args.sizes]
        if args.burst_minutes:
            phases.append((max(args.sizes), WARM_POOL, 0, args.burst_minutes))
        if args.process_minutes:
            phases.append((10, PROCESS_POOL, 59, args.process_minutes))
        try:
            for count, pool, jitter, minutes in phases:
                result["phases"].append(
                    _phase(settings, database_url, work, count, pool, jitter, minutes)
                )
        finally:
            components.worker(settings, WARM_POOL).stop()
            components.worker(settings, PROCESS_POOL).stop()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    at_50 = [p for p in result["phases"] if p["pool"] == WARM_POOL and p["n"] == 50 and p["jitter"]]
    p99 = at_50[0]["automate"]["p99"] if at_50 else None
    result["target"] = {"p99_seconds": TARGET_P99, "met": p99 is not None and p99 <= TARGET_P99}
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


def _phase(
    settings: Any,
    database_url: str,
    work: Path,
    count: int,
    pool: str,
    jitter: int,
    minutes: float,
) -> dict[str, Any]:
    import yaml

    from automates.platform import components
    from automates.registry.model import Automate
    from automates.sync import sync

    label = f"{pool}, N={count}, jitter {jitter} s"
    record = work / f"record-{pool}-{count}-{jitter}.txt"
    declared = declarations(count, pool, jitter, record)
    registry = settings.project_root / "deployments" / "registry.yaml"
    registry.write_text(yaml.safe_dump({"automates": declared}, sort_keys=False))
    log(f"phase {label}: sync (prune the previous phase's automates)")
    asyncio.run(sync(settings, database_url, prune=True))
    for other in (WARM_POOL, PROCESS_POOL):
        if other != pool:
            components.worker(settings, other).stop()
    if pool == WARM_POOL:
        components.start_warm_worker(settings)
    else:
        components.start_worker(settings, pool)
    now = datetime.now(UTC)
    begin = now.replace(second=0, microsecond=0) + timedelta(seconds=SETTLE_SECONDS + 60)
    end = begin + timedelta(minutes=minutes)
    offsets = {
        a.name: a.jitter_offset(a.schedules[0])
        for a in (Automate.model_validate(d) for d in declared)
    }
    instants = sorted(
        begin + timedelta(minutes=m, seconds=offset)
        for m in range(int(minutes))
        for offset in offsets.values()
    )
    bare: list[float] = []
    launcher = None
    if pool == WARM_POOL:
        launcher = threading.Thread(target=_launch_bare, args=(instants, bare), daemon=True)
        launcher.start()
    log(f"phase {label}: measuring {begin:%H:%M:%S} to {end:%H:%M:%S} UTC")
    _sleep_until(end + timedelta(seconds=20))  # the window's last runs finish
    if launcher is not None:
        launcher.join(timeout=60)
    samples = _samples(record, begin, end)
    expected = len(instants)
    phase = {
        "pool": pool,
        "n": count,
        "jitter": jitter,
        "minutes": minutes,
        "expected_runs": expected,
        "measured_runs": len(samples),
        "automate": _stats(samples),
        "bare_subprocess": _stats(bare) if bare else None,
    }
    log(f"phase {label}: {json.dumps(phase['automate'])}")
    return phase


def _launch_bare(instants: list[datetime], out: list[float]) -> None:
    """At each instant, start a bare Python that prints when its first statement ran."""
    children: list[tuple[datetime, subprocess.Popen[str]]] = []
    code = "import time; print(repr(time.time()))"
    for instant in instants:
        _sleep_until(instant)
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        children.append((instant, child))
    for instant, child in children:
        printed, _ = child.communicate(timeout=60)
        out.append(float(printed) - instant.timestamp())


def _samples(record: Path, begin: datetime, end: datetime) -> list[float]:
    if not record.exists():
        return []
    samples = []
    for line in record.read_text().splitlines():
        _, scheduled, started = line.split()
        if begin.timestamp() <= float(scheduled) < end.timestamp():
            samples.append(float(started) - float(scheduled))
    return samples


def _stats(samples: list[float]) -> dict[str, Any]:
    return {"runs": len(samples), **spread(samples, 3)} if samples else {"runs": 0}


def _sleep_until(moment: datetime) -> None:
    delay = (moment - datetime.now(UTC)).total_seconds()
    if delay > 0:
        time.sleep(delay)


def section(r: dict[str, Any]) -> str:
    rows = []
    for p in r["phases"]:
        a, b = p["automate"], p["bare_subprocess"]
        path = (
            "warm worker"
            if p["pool"] == WARM_POOL
            else "Prefect process worker, default settings (fresh Python per run)"
        )
        spread = f"jitter ≤ {p['jitter']} s" if p["jitter"] else "no jitter (all at :00)"
        bare = f"{b['p50']} / {b['p99']}" if b else "—"
        rows.append(
            f"| {path} | {p['n']} | {spread} | {p['measured_runs']}/{p['expected_runs']} |"
            f" {a.get('p50', '—')} | {a.get('p99', '—')} | {a.get('max', '—')} | {bare} |"
        )
    return framed(
        MARKERS,
        "Schedule lateness",
        [
            f"Measured {r['date']} by `bench/lateness_bench.py`: every-minute automates",
            "(`* * * * *`), from each run's scheduled time (after jitter) to the first statement",
            "of its flow body, through the guard, on one worker, one server, in one run;",
            f"{r['minutes']} minutes per N (the first minute of each phase not counted). Beside",
            "each warm phase, a bare `python -c` launched at the same instants: the floor of",
            "starting code on time on this machine. With all 50 at the same second even bare",
            "interpreters queue for the 2 cores; spreading (stable jitter) is what keeps 50",
            "automates on time, and the warm worker is what keeps each one on its second.",
            "",
            "| Path | N | Spread | Runs measured/expected | p50 (s) | p99 (s) | max (s) |"
            " Bare subprocess p50 / p99 (s) |",
            "|---|---:|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Target p99 <= {TARGET_P99} s at N = 50: {met_or_not(r['target']['met'])}.",
        ],
        machine_lines(r),
        "Reproduce: `uv run python bench/lateness_bench.py`.",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--minutes", type=int, default=5, help="measured minutes per N")
    parser.add_argument("--burst-minutes", type=int, default=3, help="N = 50, no jitter")
    parser.add_argument("--process-minutes", type=int, default=3, help="process worker, N = 10")
    parser.add_argument("--keep", action="store_true")
    run_and_report(parser, run, "lateness_bench", section, MARKERS, lambda r: r["target"]["met"])


if __name__ == "__main__":
    main()
