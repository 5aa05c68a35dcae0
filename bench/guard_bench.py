"""Benchmark: what the guard adds to a run, bare Prefect flows against guarded ones, one server.

    uv run python bench/guard_bench.py              # run, print JSON, rewrite its doc section
    uv run python bench/guard_bench.py --no-doc     # run and print JSON only
    uv run python bench/guard_bench.py --runs 50    # more timed runs per variant
    uv run python bench/guard_bench.py --no-process # skip part 3 (fresh engine processes)

Target (from the issue): the guard adds at most 10 % or 50 ms per run, whichever is larger.
Exit status: 0 when parts 1 and 2 meet it, 1 when one misses it.

Everything runs in a throw-away folder under /tmp: a copy of tests/fixtures/project declaring
two automates, its own embedded PostgreSQL and its own Prefect server on a free port (never
4200, never the checkout's .data), both stopped at the end, also on error. `automates sync`
deploys the two automates, migrates the store and saves the store block first.

In this process, against that server, variants interleaved (the order rotates each round),
warm-up runs first, then N timed runs each:
  1. a trivial flow called in-process (a real flow run) vs the same flow wrapped by
     `guarded(flow, policy, settings)` (which also writes the execution journal and counts the
     run on the automate's breaker in the store);
  2. `subprocess.run(["true"])` alone (the floor), a bare flow doing that `subprocess.run`,
     `run_script()` with its policy in force but unguarded, and
     `guarded(run_script, policy, settings)`;
then an instrumented pass over the guarded trivial flow (where its time goes, first use of the
store engine included), and 3. (informational) one run per fresh engine process, as the worker
starts them: `python -m prefect.engine` vs `python -m automates.guard.engine`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if (_checkout := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _checkout)  # run as a script: the imports below need the checkout

from bench import server
from bench.common import REPO, RESULTS, log
from bench.guard_measure import code_version, journal_counts, measure, overhead, timer

IMPORT_SAMPLES = 2  # fresh processes timing the guard engine's imports


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="guardbench-", dir="/tmp"))
    data_dir = work / "d"  # short: the PostgreSQL socket path must stay under 107 bytes
    project = work / "project"

    server.isolate_environment(data_dir, args.no_scheduler)  # before Prefect reads its settings
    port = server.free_port()
    # In-process flow runs report to this server (Prefect reads it when imported).
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"

    from automates.registry.policy import GUARD_ENV
    from automates.settings import Settings
    from automates.settings.groups import ServerSettings
    from automates.sync import sync
    from bench import guard_phases, guard_process, guard_setup

    guard_setup.make_project(project)
    settings = Settings(
        project_root=project,
        data_dir=data_dir,
        server=ServerSettings(port=port),
        work_pool=guard_setup.POOL,
    )
    assert settings.api_url == os.environ["PREFECT_API_URL"] and port != 4200
    assert settings.data_path.is_relative_to(Path("/tmp"))
    policies = guard_setup.policies(settings)
    runs, warmup = args.runs, args.warmup
    result: dict[str, Any] = {"runs": runs, "warmup": warmup}
    result["scheduler_service"] = not args.no_scheduler
    result["code"] = code_version(REPO)
    total_started = time.perf_counter()
    cwd = Path.cwd()
    with server.running_layer(settings, data_dir, work, args.keep, result) as database_url:
        try:
            log("automates sync: deployments, store migrated, store block saved")
            report = asyncio.run(sync(settings, database_url))
            assert len(report.created) == 2 and report.block_written, report.as_dict()

            os.chdir(project)  # where the worker starts a run
            calls, builds = guard_setup.variants(settings)
            result["guarded_build_ms"] = {k: round(v * 1000, 2) for k, v in builds.items()}

            def pick(*names: str) -> dict[str, Callable[[], float]]:
                return {name: timer(calls[name]) for name in names}

            log(f"1. trivial flow, bare vs guarded: {warmup} + {runs} runs each, interleaved")
            result["flow"] = measure(pick("bare_flow", "guarded_flow"), warmup, runs)

            os.environ[GUARD_ENV] = policies[guard_setup.SCRIPT_AUTOMATE].encoded()  # as the worker
            log(f"2. script `true`, three ways: {warmup} + {runs} runs each, interleaved")
            part2 = pick("bare_subprocess", "bare_flow_subprocess", "guarded_run_script")
            result["script"] = measure(part2, warmup, runs)

            log(f"1+2 again, Prefect's heartbeat thread off, run_script unguarded too: {runs} each")
            quiet = ["bare_flow", "guarded_flow", "bare_flow_subprocess"]
            quiet += ["unguarded_run_script", "guarded_run_script"]
            no_heartbeat = {k: timer(guard_setup.without_heartbeats(calls[k])) for k in quiet}
            result["no_heartbeat"] = measure(no_heartbeat, warmup, runs)
            del os.environ[GUARD_ENV]

            log(f"phases of the guarded trivial flow: {args.phase_runs} instrumented runs")
            result["phases"] = guard_phases.measure(
                calls["guarded_flow"], settings.store_block, args.phase_runs
            )
            expected = {
                guard_setup.FLOW_AUTOMATE: 2 * (warmup + runs) + args.phase_runs,
                guard_setup.SCRIPT_AUTOMATE: 2 * (warmup + runs),
            }
            counts = journal_counts(database_url)
            assert counts == expected, f"journal rows {counts}, expected {expected}"

            if not args.no_process:
                log(f"3. fresh engine processes, bare vs guard: {args.process_runs} runs each")
                engine_runs = guard_process.EngineRuns(
                    settings,
                    f"hello/{guard_setup.FLOW_AUTOMATE}",
                    policies[guard_setup.FLOW_AUTOMATE].encoded(),
                    project,
                )
                # no warm-up: every run is a fresh process, the server is warm already
                result["process"] = measure(engine_runs.callables(), 0, args.process_runs)
                expected[guard_setup.FLOW_AUTOMATE] += args.process_runs
                counts = journal_counts(database_url)
                assert counts == expected, f"journal rows {counts}, expected {expected}"
                log(f"imports of a guard engine beyond Prefect's: {IMPORT_SAMPLES} processes")
                result["import_samples"] = IMPORT_SAMPLES
                result["process_imports_ms"] = guard_process.import_costs(
                    engine_runs.env["bare_engine"], project, IMPORT_SAMPLES
                )
            result["journal_rows"] = counts
        finally:
            os.chdir(cwd)

    result["total_seconds"] = round(time.perf_counter() - total_started, 1)
    result["verdict"] = {
        "flow": overhead(result["flow"], "guarded_flow", "bare_flow"),
        "script": overhead(result["script"], "guarded_run_script", "bare_flow_subprocess"),
    }
    result["informational"] = {}
    quiet = result["no_heartbeat"]
    result["informational"]["no_heartbeat"] = {
        "flow": overhead(quiet, "guarded_flow", "bare_flow"),
        "script": overhead(quiet, "guarded_run_script", "bare_flow_subprocess"),
        "script_guard_only": overhead(quiet, "guarded_run_script", "unguarded_run_script"),
        "run_script_itself": overhead(quiet, "unguarded_run_script", "bare_flow_subprocess"),
    }
    if "process" in result:
        result["informational"]["process"] = overhead(
            result["process"], "guard_engine", "bare_engine"
        )
    result["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per variant first")
    parser.add_argument("--phase-runs", type=int, default=7, help="instrumented guarded runs")
    parser.add_argument("--process-runs", type=int, default=5, help="part 3 runs per variant")
    parser.add_argument("--no-process", action="store_true", help="skip part 3")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--no-scheduler", action="store_true", help="run the server without its scheduler service"
    )
    parser.add_argument("--keep", action="store_true", help="keep the /tmp work folder")
    args = parser.parse_args()
    if args.runs < 2 or args.phase_runs < 2 or args.process_runs < 2:
        parser.error("--runs, --phase-runs and --process-runs must be at least 2")
    result = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"guard_bench-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_doc:
        from bench import guard_doc

        guard_doc.write(result)
    print(json.dumps(result, indent=2))
    return 0 if all(v["met"] for v in result["verdict"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
