"""Benchmark: agents' heartbeats on one agent dispatcher (issue 16): the share skipped before
any model call, and the CPU a heartbeat costs, beside a no-op flow on the same dispatcher.

    uv run python bench/heartbeat_bench.py              # 50 agents; rewrites its doc section
    uv run python bench/heartbeat_bench.py --no-doc --agents 10   # a quick look

A throw-away folder under /tmp holds its own embedded PostgreSQL, Prefect server (scheduler
off) and project (`flows/agent_heartbeat.py` copied from the checkout, a no-op flow: the
dispatcher runs only deployments sync made, from files under the project root). The LLM CLI is
the fake CLI answering `HEARTBEAT_OK`. Heartbeats are configured as `automates heartbeat
enable` does, in the mix of SHARES (the rest reach the model); each batch starts one run of
each of its deployments at once and waits until all are final (see `section` for the rest).
Exit 1 unless every run ended as its agent's mix says and no skipped heartbeat called the model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if (_checkout := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _checkout)  # run as a script: the imports below need the checkout

from bench import server
from bench.common import REPO, doc_parser, log, run_and_report
from bench.doc import framed, machine_lines, markers, met_or_not, reproduce_in_checkout

MARKERS = markers("heartbeat-bench", "bench/heartbeat_bench.py")
FAKE_CLI = REPO / "tests" / "fixtures" / "fake_claude" / "claude"
NOOP = "flows/noop.py:noop"
NOOP_FLOW = 'from prefect import flow\n\n\n@flow(name="noop")\ndef noop() -> None:\n    pass\n'
SHARES = {"empty": 0.2, "outside": 0.2, "busy": 0.1}  # the rest: "ack"
CHECKLIST = "# Heartbeat\n- the nightly backup ran\n- no alert is waiting\n"
EMPTY_CHECKLIST = "# Heartbeat\n\n- [ ]\n<!-- nothing to check yet -->\n"
SKIP_WORDS = {"empty": "checklist is empty", "outside": "outside its active", "busy": "in flight"}
IDLE_SECONDS, SETTLE_SECONDS, BATCH_TIMEOUT = 15.0, 2.0, 900.0


def agents_mix(count: int) -> dict[str, list[str]]:
    sizes = {kind: max(1, round(count * share)) for kind, share in SHARES.items()}
    sizes = {"ack": count - sum(sizes.values()), **sizes}
    assert sizes["ack"] >= 1, f"--agents {count} is too few for the mix"
    return {kind: [f"{kind}-{i:02d}" for i in range(1, n + 1)] for kind, n in sizes.items()}


def make_project(root: Path) -> None:
    (root / "flows").mkdir(parents=True)
    shutil.copy(REPO / "flows" / "agent_heartbeat.py", root / "flows" / "agent_heartbeat.py")
    (root / "flows" / "noop.py").write_text(NOOP_FLOW)
    (root / "deployments").mkdir()
    (root / "deployments" / "registry.yaml").write_text("automates: []\n")


def run(args: argparse.Namespace) -> dict[str, Any]:
    work, data_dir, port = server.isolated_run("heartbeatbench-", no_scheduler=True)
    make_project(work / "project")

    from automates.platform import components
    from automates.settings import Settings
    from automates.settings.groups import ServerSettings
    from automates.store.engine import make_engine
    from automates.sync import sync

    settings = Settings(
        project_root=work / "project", data_dir=data_dir, server=ServerSettings(port=port)
    )
    mix = agents_mix(args.agents)
    result: dict[str, Any] = {"agents": args.agents, "mix": {k: len(v) for k, v in mix.items()}}
    started = time.perf_counter()
    with server.running_layer(settings, data_dir, work, args.keep, result) as database_url:
        settings = server.with_database(settings, database_url)
        engine = make_engine(database_url)
        try:
            asyncio.run(sync(settings, database_url))
            result["setup_seconds"] = asyncio.run(setup(settings, engine, mix, work))
            components.start_agent_dispatcher(settings)
            try:
                asyncio.run(measure(settings, engine, mix, data_dir, result))
            finally:
                components.worker(settings, settings.agent.pool).stop()
        finally:
            engine.dispose()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    b = result["batches"]
    result["ratios"] = {
        "skipped_over_noop_cpu": _ratio(b["skipped"], b["noop"]),
        "ack_over_noop_cpu": _ratio(b["ack"], b["noop"]),
        "mix_over_noop_cpu": _ratio(b["mix"], b["noop"]),
        "mix_over_noop_wall": round(b["mix"]["wall_seconds"] / b["noop"]["wall_seconds"], 2),
    }
    skipped = sum(len(mix[k]) for k in SKIP_WORDS)
    result["met"] = all(
        not x["mismatches"] and x["model_calls_when_skipped"] == 0 for x in b.values()
    ) and all(b[k]["skipped"] == skipped for k in ("mix_cold", "mix"))
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    return round(a["net_ms_per_run"]["dispatcher"] / b["net_ms_per_run"]["dispatcher"], 2)


async def setup(settings: Any, engine: Any, mix: dict[str, list[str]], work: Path) -> float:
    """The fake CLI, every agent's heartbeat as `automates heartbeat enable` configures it, a
    task run held in flight for the busy agents, and the no-op deployments."""
    from automates.agents.llm_cli import LlmCli
    from automates.agents.taskruns import TaskRunRequest, new_task_run
    from automates.registry.heartbeat import Heartbeat
    from automates.registry.model import Automate
    from automates.routines import apply, heartbeats

    started = time.perf_counter()
    wrapper = work / "claude"
    answer = "export FAKE_CLAUDE_ANSWER=HEARTBEAT_OK"  # the fake CLI's success mode
    wrapper.write_text(f'#!/bin/sh\n{answer}\nexec {sys.executable} {FAKE_CLI} "$@"\n')
    wrapper.chmod(0o755)
    await LlmCli(executable=str(wrapper)).asave(settings.llm.cli_block, overwrite=True)
    later = datetime.now(UTC) + timedelta(hours=2)  # a window that excludes the next hour
    window = {"start": f"{later:%H}:00", "end": f"{later + timedelta(hours=1):%H}:00"}
    log(f"configuring {sum(map(len, mix.values()))} heartbeats: {[len(v) for v in mix.values()]}")
    for kind, agents in mix.items():
        for agent in agents:
            changes: dict[str, Any] = {"enabled": True, "checklist": CHECKLIST}
            if kind == "empty":
                changes["checklist"] = EMPTY_CHECKLIST
            if kind == "outside":
                changes["active_hours"] = {**window, "timezone": "UTC"}
            await heartbeats.configure(settings, engine, agent, changes)
            if kind == "busy":
                held = {"codename": f"held-{agent}", "agent": agent, "prompt": "Held."}
                request = {**held, "template": "heartbeat", "perimeter": "platform"}
                new_task_run(engine, TaskRunRequest.model_validate(request), settings)
    like = Heartbeat(agent="noop", checklist="-").declaration(pool=settings.agent.pool)
    for index in range(1, sum(map(len, mix.values())) + 1):
        noop = {"name": f"noop-{index:02d}", "entrypoint": NOOP, "parameters": {}, "agents": ()}
        fields = {**like.model_dump(), **noop, "family": "bench", "description": "A no-op flow."}
        await apply.deploy(settings, engine, Automate.model_validate(fields))
    return round(time.perf_counter() - started, 1)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """user+system seconds of each process tree: live processes and their reaped children."""
    import psutil

    totals: dict[str, float] = {}
    for group, pid in pids.items():
        root, total = psutil.Process(pid), 0.0
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = process.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        totals[group] = total
    return totals


async def measure(
    settings: Any, engine: Any, mix: dict[str, list[str]], data_dir: Path, result: dict[str, Any]
) -> None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from sqlalchemy import select

    from automates import principal
    from automates.platform import components
    from automates.server.client import prefect_client
    from automates.server.runs import start_run
    from automates.store import embedded_pg
    from automates.store.engine import transaction
    from automates.store.schema import task_runs

    deployments = {d.name: d for d in await server.server_deployments(settings.api_url)}
    expected = {f"heartbeat-{a}": kind for kind, agents in mix.items() for a in agents}
    expected |= {f"noop-{i:02d}": "completed" for i in range(1, len(expected) + 1)}
    postmaster = (embedded_pg.pgdata(data_dir) / "postmaster.pid").read_text().split()[0]
    dispatcher = components.worker(settings, settings.agent.pool).pid()
    prefect_server = components.server(settings).pid()
    assert dispatcher and prefect_server, "the dispatcher or the server is not running"
    pids = {"dispatcher": dispatcher, "server": prefect_server, "postgres": int(postmaster)}
    async with prefect_client(settings.api_url) as client:
        while not await client.read_workers_for_work_pool(settings.agent.pool):
            await asyncio.sleep(0.5)
    log(f"dispatcher online; its idle CPU over {IDLE_SECONDS:g} s")
    before = cpu_seconds(pids)
    await asyncio.sleep(IDLE_SECONDS)
    idle = {g: (s - before[g]) / IDLE_SECONDS for g, s in cpu_seconds(pids).items()}
    result["idle_cpu_per_second"] = {g: round(v, 4) for g, v in idle.items()}

    def of(*kinds: str) -> list[Any]:
        return [deployments[name] for name, kind in expected.items() if kind in kinds]

    heartbeats = [*SKIP_WORDS, "ack"]
    batches = {
        "mix_cold": of(*heartbeats),
        "noop_cold": of("completed"),
        "noop": of("completed"),
        "skipped": of(*SKIP_WORDS),
        "ack": of("ack"),
        "mix": of(*heartbeats),
    }

    async def batch(label: str, targets: list[Any]) -> dict[str, Any]:
        """One run of each target at once, until all are final: outcomes, model calls, CPU."""
        log(f"{label}: {len(targets)} runs at once")
        before, clock, start = cpu_seconds(pids), time.perf_counter(), time.time()
        tags = [principal.tag(principal.SYSTEM)]
        async with prefect_client(settings.api_url) as client:
            made = await asyncio.gather(*(start_run(client, d, {}, tags) for d in targets))
            ids = [r.id for r in made]
            ours = FlowRunFilter(id=FlowRunFilterId(any_=ids))
            deadline = time.monotonic() + BATCH_TIMEOUT
            while True:
                await asyncio.sleep(1.0)
                runs = await client.read_flow_runs(flow_run_filter=ours, limit=len(ids))
                if len(runs) == len(ids) and all(r.state and r.state.is_final() for r in runs):
                    break
                assert time.monotonic() < deadline, (
                    f"{label}: runs not final after {BATCH_TIMEOUT} s"
                )
        await asyncio.sleep(SETTLE_SECONDS)
        after, window = cpu_seconds(pids), time.perf_counter() - clock
        names = {d.id: d.name for d in targets}
        got = {names[r.deployment_id]: outcome(r) for r in runs}
        with transaction(engine) as connection:
            rows = connection.execute(
                select(task_runs.c.id, task_runs.c.started_at).where(task_runs.c.id.in_(ids))
            ).all()
        skipped = {r.id for r in runs if r.state_name == "Skipped"}
        n, cpu = len(ids), {g: after[g] - before[g] for g in pids}
        net = {g: v - idle[g] * window for g, v in cpu.items()}
        ended = max(r.end_time.timestamp() for r in runs if r.end_time)
        wrong = Counter(f"{expected[k]} -> {v[:110]}" for k, v in got.items() if v != expected[k])
        found = {
            "runs": n,
            "outcomes": dict(Counter(got.values())),
            "skipped": len(skipped),
            "mismatches": dict(wrong),
            "model_calls": sum(1 for row in rows if row.started_at),
            "model_calls_when_skipped": sum(1 for r in rows if r.started_at and r.id in skipped),
            "wall_seconds": round(ended - start, 2),
            "cpu_seconds": {g: round(v, 2) for g, v in cpu.items()},
            "ms_per_run": {g: round(1000 * v / n, 1) for g, v in cpu.items()},
            "net_ms_per_run": {g: round(1000 * v / n, 1) for g, v in net.items()},
        }
        log(f"   {found['outcomes']}, {found['wall_seconds']} s, {found['net_ms_per_run']}")
        return found

    result["batches"] = {label: await batch(label, targets) for label, targets in batches.items()}
    with transaction(engine) as connection:  # a claimed task run whose CLI never started
        stuck = task_runs.c.status == "running", task_runs.c.started_at.is_(None)
        result["task_runs_left_running"] = len(
            connection.execute(select(task_runs.c.id).where(*stuck)).all()
        )


def outcome(flow_run: Any) -> str:
    """What a run's final state says: a skip reason, an acknowledgement, or what else."""
    message = (flow_run.state.message if flow_run.state else None) or ""
    if flow_run.state_name == "Skipped":
        return next((k for k, words in SKIP_WORDS.items() if words in message), "skipped?")
    if flow_run.state_name == "Completed":
        return "ack" if message.startswith("acknowledged") else "completed"
    return f"{flow_run.state_name}: {message[:200]}"


LABELS = {
    "mix_cold": "Heartbeats, the mix, cold (first run of each deployment)",
    "noop_cold": "No-op flow, cold",
    "noop": "No-op flow (the baseline)",
    "skipped": "Heartbeats skipped before the model, alone",
    "ack": "Heartbeats reaching the model (acknowledged), alone",
    "mix": "Heartbeats, the mix",
}


def section(r: dict[str, Any]) -> str:
    b, x, m, idle = r["batches"], r["ratios"], r["mix"], r["idle_cpu_per_second"]

    def row(key: str) -> str:
        f, net = b[key], b[key]["net_ms_per_run"]
        return (
            f"| {LABELS[key]} | {f['runs']} | {f['skipped']} | {f['model_calls']} "
            f"| {f['wall_seconds']} | {f['ms_per_run']['dispatcher']:g} | {net['dispatcher']:g} "
            f"| {net['server']:g} | {net['postgres']:g} |"
        )

    wrong = [
        f"- {LABELS[key]}: " + "; ".join(f"{n} x {what}" for what, n in f["mismatches"].items())
        for key, f in b.items()
        if f["mismatches"]
    ]
    if wrong:
        wrong = ["", "Runs that did not end as the mix says (expected -> got):", "", *wrong]
    share = round(100 * b["mix"]["skipped"] / b["mix"]["runs"])
    idle_ms = ", ".join(f"{g} {v * 1000:.0f}" for g, v in idle.items())
    intro = (
        f"Measured {r['date']} by `bench/heartbeat_bench.py`: {r['agents']} heartbeats configured "
        f"as `automates heartbeat enable` does: {m['ack']} with a checklist (the fake CLI answers "
        f"`HEARTBEAT_OK`), {m['empty']} with an empty checklist, {m['outside']} outside their "
        f"active hours, {m['busy']} whose agent has a task run in flight. Each batch starts one "
        "run of each deployment at once (as at one tick) on one agent dispatcher (8 slots) and "
        "waits until all are final. Baseline: a no-op flow, one deployment per agent declared "
        "like a heartbeat (same pool and guard: the dispatcher runs only what sync made). CPU "
        "per run is user+system of each process tree (the dispatcher's includes the CLI "
        f"processes it reaped); net subtracts the tree's idle rate (ms/s: {idle_ms})."
    )
    verdict = (
        f"Skipped before any model call: {share} % of the warm mix ({b['mix']['skipped']} of "
        f"{b['mix']['runs']}); model calls by skipped heartbeats: "
        f"{sum(f['model_calls_when_skipped'] for f in b.values())}. Warm, dispatcher net CPU per "
        f"run: skipped / no-op {x['skipped_over_noop_cpu']}x, acknowledged / no-op "
        f"{x['ack_over_noop_cpu']}x, the mix / no-op {x['mix_over_noop_cpu']}x; wall time, the "
        f"mix / no-op {x['mix_over_noop_wall']}x. Every run ended as the mix says and no skipped "
        f"heartbeat called the model: {met_or_not(r['met'])}. Task runs left `running` without "
        f"a CLI process at the end: {r['task_runs_left_running']}."
    )
    notes = (
        "The fake CLI is a short Python process: a real CLI's start-up and the model's time "
        "would add to each acknowledged heartbeat, never to a skipped one. The server took "
        f"{r['server_start_seconds']} s to become healthy; set-up {r['setup_seconds']} s; the "
        f"whole run {r['total_seconds']} s."
    )
    return framed(
        MARKERS,
        f"Agents' heartbeats: {r['agents']} agents on one dispatcher",
        [
            *textwrap.wrap(intro, 95),
            "",
            "| Batch | Runs | Skipped before model | Model calls | Wall (s) | Dispatcher CPU/run "
            "(ms) | net (ms) | Prefect server net (ms) | PostgreSQL net (ms) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *[row(key) for key in LABELS],
            "",
            *textwrap.wrap(verdict, 95),
            *wrong,
            "",
            *textwrap.wrap(notes, 95),
        ],
        machine_lines(r),
        reproduce_in_checkout("uv run python bench/heartbeat_bench.py"),
    )


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("--agents", type=int, default=50, help="agents (the mix scales)")
    parser.add_argument("--keep", action="store_true", help="keep the /tmp work folder")
    run_and_report(parser, run, "heartbeat_bench", section, MARKERS, lambda r: r["met"])


if __name__ == "__main__":
    main()
