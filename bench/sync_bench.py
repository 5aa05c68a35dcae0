"""Benchmark: `automates sync` against `prefect deploy --all`, 200 deployments, one server.

    uv run python bench/sync_bench.py            # run, print JSON, rewrite docs/benchmarks.md
    uv run python bench/sync_bench.py --no-doc   # run and print JSON only
    uv run python bench/sync_bench.py --profile  # also cProfile our two syncs (top functions)
    uv run python bench/sync_bench.py --phases   # also time the phases inside our syncs
    uv run python bench/sync_bench.py --no-scheduler  # server without its scheduler service

`--profile` and `--phases` add overhead; the figures written to docs/benchmarks.md should come
from a plain run. Exit status: 0 when both targets are met, 1 when one is missed.

Everything runs in a throw-away folder under /tmp: a copy of tests/fixtures/project with 200
generated declarations, its own embedded PostgreSQL and its own Prefect server on a free port
(never 4200, never the checkout's .data). Both are stopped at the end, also on error.

Steps, in this order, against the same server:
  a. our sync, cold (empty server)                        -- in-process `await sync(...)`
  b. our sync again, nothing changed (asserts 0 server writes)
  b2. the same no-change sync through the CLI (`automates sync --json`, a fresh process),
      for a like-for-like comparison with `prefect deploy` which pays interpreter start-up too
  -- every deployment and flow deleted through the Prefect client --
  c. `prefect --no-prompt deploy --all`, cold, from the prefect.yaml rendered from the registry
  d. `prefect --no-prompt deploy --all` again, nothing changed
  e. our sync on top of what `prefect deploy` made (informational: does it agree with us?)
Then, for each further round (`--rounds`, default 3): the server emptied, our cold sync and
no-change sync; emptied again, `prefect deploy --all` cold and with nothing changed. The
verdicts use the median over the rounds of each round's ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if (_checkout := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _checkout)  # run as a script: the imports below need the checkout

from bench import doc, fixture, instrument, server, timed
from bench.common import RESULTS, log

TARGET_COLD = 5.0  # prefect-deploy-cold / our-cold must be at least this
TARGET_NOCHANGE = 20.0  # prefect-deploy-nochange / our-nochange must be at least this


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="syncbench-", dir="/tmp"))
    data_dir = work / "d"  # short: the PostgreSQL socket path must stay under 107 bytes
    project = work / "project"

    server.isolate_environment(data_dir, args.no_scheduler)  # before Prefect reads its settings
    import prefect

    from automates.registry.loader import load_registry
    from automates.server.prefect_yaml import render
    from automates.settings import Settings
    from automates.settings.groups import ServerSettings

    fixture.make_project(project)
    port = server.free_port()
    settings = Settings(
        project_root=project,
        data_dir=data_dir,
        server=ServerSettings(port=port),
        work_pool=fixture.POOL,
    )
    assert settings.api_url == f"http://127.0.0.1:{port}/api" and port != 4200
    assert settings.data_path.is_relative_to(Path("/tmp"))
    expected = {d["name"] for d in fixture.declarations()}
    profile = cProfile.Profile() if args.profile else None
    phases = instrument.Phases() if args.phases else None
    if phases is not None:
        phases.install()
    result: dict[str, Any] = {"count": fixture.COUNT, "scheduler_service": not args.no_scheduler}
    total_started = time.perf_counter()
    with server.running_layer(settings, data_dir, work, args.keep, result) as database_url:
        log("a. our sync, cold")
        seconds, report = asyncio.run(timed.our_sync(settings, database_url, profile))
        assert len(report.created) == fixture.COUNT, f"cold sync created {len(report.created)}"
        server.check_deployed(settings.api_url, expected, "our cold sync")
        result["ours_cold"] = _figure(seconds, server_writes=report.server_writes)
        cold_profile = instrument.profile_text(profile) if profile else None
        if phases is not None:
            result.setdefault("phases", {})["ours_cold"] = phases.summary()
            phases.reset()

        log("b. our sync, nothing changed")
        profile = cProfile.Profile() if args.profile else None
        seconds, report = asyncio.run(timed.our_sync(settings, database_url, profile))
        assert report.server_writes == 0, f"no-change sync wrote: {report.as_dict()}"
        assert not report.registry_written and not report.block_written, report.as_dict()
        result["ours_nochange"] = _figure(seconds, server_writes=report.server_writes)
        nochange_profile = instrument.profile_text(profile) if profile else None
        if phases is not None:
            result["phases"]["ours_nochange"] = phases.summary()
            phases.reset()

        log("b2. `automates sync --json` in a fresh process, nothing changed")
        seconds, cli_report = timed.cli_sync(settings, project)
        assert cli_report["server_writes"] == 0, cli_report
        result["ours_cli_nochange"] = _figure(seconds, server_writes=cli_report["server_writes"])

        log("deleting every deployment and flow")
        asyncio.run(server.empty_server(settings.api_url))

        (project / "prefect.yaml").write_text(
            render(load_registry(settings.registry_path), fixture.POOL, prefect.__version__)
        )
        log("c. prefect deploy --all, cold")
        seconds = timed.prefect_deploy(settings, project, work / "deploy-cold.log")
        server.check_deployed(settings.api_url, expected, "prefect deploy --all (cold)")
        result["prefect_deploy_cold"] = _figure(seconds)

        log("d. prefect deploy --all, nothing changed")
        seconds = timed.prefect_deploy(settings, project, work / "deploy-nochange.log")
        server.check_deployed(settings.api_url, expected, "prefect deploy --all (no change)")
        result["prefect_deploy_nochange"] = _figure(seconds)

        log("e. our sync over what prefect deploy made (informational)")
        example = asyncio.run(
            server.first_difference(settings, load_registry(settings.registry_path))
        )
        seconds, report = asyncio.run(timed.our_sync(settings, database_url, None))
        fields = collections.Counter(f for changed in report.updated.values() for f in changed)
        result["ours_after_prefect_deploy"] = {
            **_figure(seconds, server_writes=report.server_writes),
            "updated": len(report.updated),
            "created": len(report.created),
            "fields_changed": dict(sorted(fields.items())),
            "example": example,
        }
        rounds = [{k: result[k]["seconds"] for k in ROUND_STEPS}]
        for number in range(2, args.rounds + 1):
            rounds.append(_round(number, settings, database_url, project, work, expected))
        result["rounds"] = rounds

    result["total_seconds"] = round(time.perf_counter() - total_started, 1)
    result["ratios"] = ratios(result)
    result["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if args.profile:
        result["profiles"] = {"ours_cold": cold_profile, "ours_nochange": nochange_profile}
    return result


ROUND_STEPS = ("ours_cold", "ours_nochange", "prefect_deploy_cold", "prefect_deploy_nochange")


def _round(
    number: int,
    settings: Any,
    database_url: str,
    project: Path,
    work: Path,
    expected: set[str],
) -> dict[str, float]:
    """One more pair of cold and no-change runs of each side, each cold run starting from an
    emptied server; the server is warm by now for both, where round 1 gave ours a fresh one."""
    figures: dict[str, float] = {}
    log(f"round {number}: emptying the server; our sync, cold, then nothing changed")
    asyncio.run(server.empty_server(settings.api_url))
    seconds, report = asyncio.run(timed.our_sync(settings, database_url, None))
    assert len(report.created) == fixture.COUNT, f"cold sync created {len(report.created)}"
    server.check_deployed(settings.api_url, expected, f"our cold sync, round {number}")
    figures["ours_cold"] = round(seconds, 3)
    seconds, report = asyncio.run(timed.our_sync(settings, database_url, None))
    assert report.server_writes == 0, f"no-change sync wrote: {report.as_dict()}"
    figures["ours_nochange"] = round(seconds, 3)
    log(f"round {number}: emptying the server; prefect deploy --all, cold, then nothing changed")
    asyncio.run(server.empty_server(settings.api_url))
    for step, name in (("prefect_deploy_cold", "cold"), ("prefect_deploy_nochange", "nochange")):
        seconds = timed.prefect_deploy(settings, project, work / f"deploy-{name}-{number}.log")
        server.check_deployed(settings.api_url, expected, f"prefect deploy --all, round {number}")
        figures[step] = round(seconds, 3)
    return figures


def _figure(seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 3),
        "per_deployment": round(seconds / fixture.COUNT, 4),
        **extra,
    }


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    """The verdicts use the median over rounds of each round's own ratio (the two sides of a
    ratio ran minutes apart; the machine is shared and its speed moves over a run)."""
    rounds = result["rounds"]
    for r in rounds:
        r["cold_ratio"] = round(r["prefect_deploy_cold"] / r["ours_cold"], 1)
        r["nochange_ratio"] = round(r["prefect_deploy_nochange"] / r["ours_nochange"], 1)
    cold = statistics.median(r["prefect_deploy_cold"] / r["ours_cold"] for r in rounds)
    nochange = statistics.median(r["prefect_deploy_nochange"] / r["ours_nochange"] for r in rounds)
    nochange_cli = (
        result["prefect_deploy_nochange"]["seconds"] / result["ours_cli_nochange"]["seconds"]
    )
    return {
        "cold": {"ratio": round(cold, 1), "target": TARGET_COLD, "met": cold >= TARGET_COLD},
        "nochange": {
            "ratio": round(nochange, 1),
            "target": TARGET_NOCHANGE,
            "met": nochange >= TARGET_NOCHANGE,
        },
        "nochange_cli_process": {
            "ratio": round(nochange_cli, 1),
            "target": TARGET_NOCHANGE,
            "met": nochange_cli >= TARGET_NOCHANGE,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--profile", action="store_true", help="cProfile our two syncs")
    parser.add_argument("--phases", action="store_true", help="time phases of our syncs")
    parser.add_argument(
        "--no-scheduler", action="store_true", help="run the server without its scheduler service"
    )
    parser.add_argument("--keep", action="store_true", help="keep the /tmp work folder")
    parser.add_argument(
        "--rounds", type=int, default=3, help="cold and no-change pairs of each side (median)"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    result = run(args)
    profiles = result.pop("profiles", None)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"sync_bench-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    if profiles:
        for name, text in profiles.items():
            (RESULTS / f"sync_bench-{stamp}-{name}.prof.txt").write_text(text)
            print(f"--- cProfile {name} (cumulative) ---\n{text}", file=sys.stderr)
    if not (args.no_doc or args.profile or args.phases):  # instrumented runs are not the figures
        doc.write_doc(result)
    print(json.dumps(result, indent=2))
    met = all(x["met"] for k, x in result["ratios"].items() if k != "nochange_cli_process")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
