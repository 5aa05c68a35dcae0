"""Benchmark: the layer's MCP routine tools as an agent reaches them (issue 16), beside the same
operations called directly in Python and Prefect's own client calls, same server, same minute.

    uv run python -m bench.mcp_bench              # about 3 minutes; rewrites its doc section
    uv run python -m bench.mcp_bench --no-doc --calls 10 --startup-runs 2   # a quick look

Everything runs in a throw-away folder under /tmp: its own embedded PostgreSQL and Prefect
server on a free port (never 4200, never the checkout's .data; the server's scheduler off, so
200 enabled routines do not fill the database with scheduled runs while it measures), both
stopped at the end, also on error. The project is a copy of tests/fixtures/project with
`flows/agent_task_run.py` copied from the checkout (the flow prompt routines run) and an empty
registry file. The agent is trusted (AUTOMATES_AGENT_TRUSTED), so its routines need no approval
and run-now is allowed; no worker runs: the runs it makes are created, never executed.

Set-up (timed, informational): the store migrated, 200 routine specs of one agent inserted with
`automates.store.routines.save_routine` in one transaction (cron and interval schedules in 12
timezones, a tenth with quiet hours), then one in-process `automates.sync.sync` (what `automates
sync` runs), which deploys them: 200 deployments tagged `agent:NAME`.

Then, each operation interleaved with its baselines (the order rotating each round), warm-up
calls first, through one session of the official SDK's client, `mcp.client.Client` over stdio
to `python -m automates.mcp --agent NAME` started in the layer's environment:

1. list_routines with 200 routines: the MCP tool call; `RoutineTools(...).list_routines()`
   called in this process (what MCP, stdio and the tool-call journal add); Prefect's
   `read_deployments` of the same 200 deployments through one open client (for scale).
   Informational: `declared_in` alone (the registry file and the routines read and turned into
   declarations) and one tool-call journal insert alone, the two parts of a call most likely
   to dominate.
2. run-now: the `run_routine` tool call (returns once the flow run exists); `RoutineTools`'
   `run_routine` in this process; Prefect's plain `create_flow_run_from_deployment` for the same
   deployment through one open client. Informational: the deployment looked up by name
   (`managed_deployment`, as the tool does) on the open client and on a new client (the tool
   opens one per call).
3. Start-up of the MCP server: a new `Client` entered (process spawned until the protocol
   handshake is answered), in the SDK client's default mode (`server/discover` probe) and in
   `legacy` mode (the `initialize` handshake an LLM CLI of today sends), then the first
   `list_routines` on that session (it lists the tools first to learn their output schemas).
   After each round, the fresh-process floors in the same environment, timed the same way
   (spawned until the code has run and says so; the exit not timed): `python -c pass`, and
   `python -c` of the imports the server needs (all of them, and two big ones alone).
4. Informational: `create_routine` then `delete_routine` of a few extra routines through MCP
   (each carries the change to the server at once).

No target is fixed by the issue: the figures and ratios are reported, exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if (_checkout := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _checkout)  # run as a script: the imports below need the checkout

from bench import server
from bench.common import REPO, doc_parser, log, run_and_report, spread
from bench.doc import framed, machine_lines, markers, reproduce_in_checkout
from bench.fixture import TEMPLATE, TIMEZONES

MARKERS = markers("mcp-bench", "bench/mcp_bench.py")
AGENT = "scout"
COUNT = 200
POOL = "mcp-bench"
TARGET = "routine-0001"  # the routine run-now runs
MAX_ROUTINES = 250  # the 200 and the extra ones created in part 4
# What a fresh server process imports before it can answer (automates.mcp.__main__'s imports).
SERVER_IMPORTS = "import automates.mcp.server, automates.routines.tools, automates.store.database"
FLOORS = {  # name: (what the doc calls it, the code a fresh `python -c` runs)
    "pass": ("`pass`", "pass"),
    "mcp": ("`import mcp.server.mcpserver`", "import mcp.server.mcpserver"),
    "prefect": ("`import prefect`", "import prefect"),
    "server_imports": (
        "the server's imports (`automates.mcp.server` and its peers)",
        SERVER_IMPORTS,
    ),
}
EVERY = ["15m", "30m", "1h", "2h", "6h", "12h"]
CRONS = ["0 9 * * *", "30 7 * * 1-5", "*/30 * * * *", "0 */4 * * *", "15 18 * * 5", "0 6 1 * *"]

Timed = Callable[[], Awaitable[None]]


def routine_specs(count: int = COUNT, first: int = 1) -> list[dict[str, Any]]:
    """`count` valid routine specs (what an agent gives `create_routine`), deterministic."""
    specs = []
    for i in range(first, first + count):
        timezone = TIMEZONES[i % len(TIMEZONES)]
        if i % 3 == 0:
            schedule: dict[str, Any] = {"every": EVERY[i % len(EVERY)], "timezone": timezone}
        else:
            schedule = {"cron": CRONS[i % len(CRONS)], "timezone": timezone}
        spec: dict[str, Any] = {
            "name": f"routine-{i:04d}",
            "description": f"benchmark routine number {i}",
            "schedule": schedule,
            "prompt": f"Routine {i}: summarise what changed in the monitored sources since the "
            "last run and list anything that needs a human.",
        }
        if i % 10 == 0:
            spec["quiet_hours"] = {"start": "22:00", "end": "07:00", "timezone": timezone}
        specs.append(spec)
    return specs


def make_project(root: Path) -> None:
    shutil.copytree(TEMPLATE, root, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "flows" / "agent_task_run.py", root / "flows" / "agent_task_run.py")
    (root / "deployments").mkdir()
    (root / "deployments" / "registry.yaml").write_text("automates: []\n")


def run(args: argparse.Namespace) -> dict[str, Any]:
    work, data_dir, port = server.isolated_run("mcpbench-", no_scheduler=True)
    project = work / "project"
    make_project(project)

    from automates.settings import Settings
    from automates.settings.groups import AgentSettings, ServerSettings

    settings = Settings(
        project_root=project,
        data_dir=data_dir,
        server=ServerSettings(port=port),
        work_pool=POOL,
        agent=AgentSettings(trusted=(AGENT,), max_routines=MAX_ROUTINES),
    )
    result: dict[str, Any] = {
        "agent": AGENT,
        "routines": COUNT,
        "calls": args.calls,
        "warmup": args.warmup,
        "startup_runs": args.startup_runs,
        "creates": args.creates,
    }
    started = time.perf_counter()
    with server.running_layer(settings, data_dir, work, args.keep, result) as database_url:
        settings = server.with_database(settings, database_url)
        result["setup"] = setup(settings, database_url)
        asyncio.run(measure(settings, database_url, args, result))
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    result["ratios"] = ratios(result)
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


def setup(settings: Any, database_url: str) -> dict[str, Any]:
    """The 200 routines stored, then one sync deploys them."""
    from automates.registry.routine import RoutineSpec
    from automates.store.engine import make_engine, migrate, transaction
    from automates.store.routines import save_routine
    from automates.sync import sync

    engine = make_engine(database_url)
    try:
        migrate(engine)
        log(f"{COUNT} routines of {AGENT!r} saved in the store")
        started = time.perf_counter()
        with transaction(engine) as connection:
            for spec in routine_specs():
                save_routine(connection, AGENT, RoutineSpec.model_validate(spec))
        saved = time.perf_counter() - started
    finally:
        engine.dispose()
    log("automates sync (in-process): deploys them")
    started = time.perf_counter()
    report = asyncio.run(sync(settings, database_url))
    synced = time.perf_counter() - started
    everything = asyncio.run(server.server_deployments(settings.api_url))
    deployed = [d for d in everything if f"agent:{AGENT}" in d.tags]
    assert len(deployed) == len(everything) == COUNT, f"{len(everything)} deployments"
    return {
        "save_seconds": round(saved, 2),
        "sync_seconds": round(synced, 1),
        "created": len(report.created),
        "deployments": len(deployed),
    }


def agent_filter() -> Any:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    return DeploymentFilter(tags=DeploymentFilterTags(all_=[f"agent:{AGENT}"]))


def floor_round(env: dict[str, str], samples: dict[str, list[float]]) -> None:
    """One fresh process of each floor in the server's environment, timed as the server's
    start is (spawned until it answers): until it has run its code and says so on stdout. Its
    exit is not timed (a process that imported Prefect takes a while to shut down)."""
    for name, (_, code) in FLOORS.items():
        started = time.perf_counter()
        with subprocess.Popen(
            [sys.executable, "-c", f"{code}; print('ready', flush=True)"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stdout is not None and child.stdout.readline() == "ready\n", name
            samples.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        assert child.returncode == 0, f"{name}: exit status {child.returncode}"


class Session:
    """One agent's MCP client session; counts its calls (each one journaled by the server)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        self.calls += 1
        answer = await self.client.call_tool(tool, arguments)
        assert not answer.is_error, f"{tool}: {answer.content}"
        assert answer.structured_content is not None, f"{tool}: no structured content"
        return dict(answer.structured_content)

    async def text_bytes(self, tool: str) -> int:
        """The size of a tool's answer as the model reads it (its text content)."""
        self.calls += 1
        answer = await self.client.call_tool(tool, {})
        return sum(len(getattr(part, "text", "").encode()) for part in answer.content)


def server_parameters(settings: Any) -> Any:
    from mcp.client.stdio import StdioServerParameters

    from automates.platform.components import prefect_env

    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "automates.mcp", "--agent", AGENT],
        env=prefect_env(settings),  # what the layer gives the processes it starts
        cwd=str(REPO),
    )


async def interleaved(variants: dict[str, Timed], calls: int, warmup: int) -> dict[str, Any]:
    """Each variant `calls` times, rotating which goes first each round, after `warmup`
    untimed rounds; their samples in milliseconds and their spread."""
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            await variants[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(calls):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            await variants[name]()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {
        name: {**spread(values, 1), "samples": [round(v, 1) for v in values]}
        for name, values in samples.items()
    }


async def measure(
    settings: Any, database_url: str, args: argparse.Namespace, result: dict[str, Any]
) -> None:
    from mcp.client import Client

    from automates.routines.tools import RoutineTools
    from automates.server.client import prefect_client
    from automates.store.engine import make_engine

    engine = make_engine(database_url)
    tools = RoutineTools(settings, engine, AGENT)
    params = server_parameters(settings)
    mcp_calls = 0
    try:
        result["startup"], result["floors_ms"], calls = await startup(params, args.startup_runs)
        mcp_calls += calls
        async with Client(params) as client, prefect_client(settings.api_url) as prefect:
            session = Session(client)
            result["list_routines"] = await list_part(session, tools, prefect, args)
            result["list_routines"]["phases_ms"] = phases(settings, engine, args.calls)
            result["run_now"] = await run_part(session, tools, prefect, settings.api_url, args)
            if args.creates:
                result["create_delete"] = await create_delete(session, args.creates)
            mcp_calls += session.calls
        result["journal"] = journal_check(engine, mcp_calls)
    finally:
        engine.dispose()


async def startup(params: Any, runs: int) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Fresh server processes: entering a new `Client` (spawn until the handshake is answered),
    in the client's default mode and in legacy mode, then the session's first list_routines;
    each round followed by the fresh-process floors, so both see the same load."""
    from mcp.client import Client

    log(f"3. start-up of the MCP server, {runs} per mode, with the fresh-process floors")
    samples: dict[str, list[float]] = {"auto": [], "legacy": [], "first_list_routines": []}
    floors: dict[str, list[float]] = {}
    calls = 0
    for index in range(runs):
        for mode in ("auto", "legacy") if index % 2 == 0 else ("legacy", "auto"):
            started = time.perf_counter()
            async with Client(params, mode=mode) as client:
                samples[mode].append((time.perf_counter() - started) * 1000)
                if mode == "legacy":
                    started = time.perf_counter()
                    listed = await Session(client).call("list_routines")
                    samples["first_list_routines"].append((time.perf_counter() - started) * 1000)
                    assert len(listed["routines"]) == COUNT
                    calls += 1
        floor_round(params.env, floors)
    return (
        {name: spread(values, 0) for name, values in samples.items()},
        {name: spread(values, 0) for name, values in floors.items()},
        calls,
    )


async def list_part(session: Session, tools: Any, prefect: Any, args: argparse.Namespace) -> Any:
    log(f"1. list_routines with {COUNT} routines, {args.calls} calls each")

    async def mcp() -> None:
        listed = await session.call("list_routines")
        assert len(listed["routines"]) == COUNT

    async def direct() -> None:
        assert len(tools.list_routines()["routines"]) == COUNT

    async def read_deployments() -> None:
        found = await prefect.read_deployments(deployment_filter=agent_filter(), limit=COUNT)
        assert len(found) == COUNT

    timed = await interleaved(
        {"mcp": mcp, "direct": direct, "prefect_read_deployments": read_deployments},
        args.calls,
        args.warmup,
    )
    return {**timed, "answer_bytes": await session.text_bytes("list_routines")}


def phases(settings: Any, engine: Any, calls: int) -> dict[str, Any]:
    """Two parts of a list_routines call, alone: the declarations read (file and routines),
    and the journal insert the MCP server makes after every call."""
    from automates.mcp.journal import journaled_arguments
    from automates.states import ToolCallOutcome
    from automates.store.declared import declared_in
    from automates.store.engine import transaction
    from automates.store.routines import journal_tool_call

    declared: list[float] = []
    journal: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        with transaction(engine) as connection:
            registry = declared_in(connection, settings)
        declared.append((time.perf_counter() - started) * 1000)
        assert len(registry.automates) == COUNT
        started = time.perf_counter()
        with transaction(engine) as connection:
            journal_tool_call(
                connection, "mcp-bench", "list_routines", journaled_arguments({}),
                ToolCallOutcome.OK, None,
            )  # fmt: skip
        journal.append((time.perf_counter() - started) * 1000)
    return {"declared_in": spread(declared, 1), "journal_insert": spread(journal, 1)}


async def run_part(
    session: Session, tools: Any, prefect: Any, api_url: str, args: argparse.Namespace
) -> Any:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    log(f"2. run-now of {TARGET}, {args.calls} calls each")
    deployment = await prefect.read_deployment_by_name(f"agent-task-run/{TARGET}")

    async def mcp() -> None:
        made = await session.call("run_routine", name=TARGET)
        assert made["flow_run_id"]

    async def direct() -> None:
        assert (await tools.run_routine(TARGET))["flow_run_id"]

    async def create_flow_run() -> None:
        await prefect.create_flow_run_from_deployment(deployment.id)

    timed = await interleaved(
        {"mcp": mcp, "direct": direct, "prefect_create_flow_run": create_flow_run},
        args.calls,
        args.warmup,
    )
    runs = await prefect.count_flow_runs(
        flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]))
    )
    expected = 3 * (args.calls + args.warmup)
    assert runs == expected, f"{runs} flow runs of {TARGET}, expected {expected}"
    return {
        **timed,
        "flow_runs_created": runs,
        "phases_ms": await run_phases(prefect, api_url, args.calls),
    }


async def run_phases(prefect: Any, api_url: str, calls: int) -> dict[str, Any]:
    """The deployment looked up by name (`managed_deployment`, as run_routine does before it
    creates the run) on the open client, and on a new client opened for it and closed after
    (the tool opens one per call: a new connection to the API each time)."""
    from automates.server.client import prefect_client
    from automates.server.runs import managed_deployment

    open_client: list[float] = []
    new_client: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        assert await managed_deployment(prefect, TARGET) is not None
        open_client.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        async with prefect_client(api_url) as fresh:
            assert await managed_deployment(fresh, TARGET) is not None
        new_client.append((time.perf_counter() - started) * 1000)
    return {
        "managed_deployment_open_client": spread(open_client, 1),
        "managed_deployment_new_client": spread(new_client, 1),
    }


async def create_delete(session: Session, count: int) -> dict[str, Any]:
    log(f"4. create_routine then delete_routine, {count} routines")
    created: list[float] = []
    deleted: list[float] = []
    for spec in routine_specs(count, first=COUNT + 1):
        started = time.perf_counter()
        made = await session.call("create_routine", routine=spec)
        created.append((time.perf_counter() - started) * 1000)
        assert made["change"] == "created" and made["active"], made
        started = time.perf_counter()
        gone = await session.call("delete_routine", name=spec["name"])
        deleted.append((time.perf_counter() - started) * 1000)
        assert gone["deployment_deleted"], gone
    return {"create_routine": spread(created, 0), "delete_routine": spread(deleted, 0)}


def journal_check(engine: Any, mcp_calls: int) -> dict[str, int]:
    """Every MCP call made is in the tool-call journal, once."""
    from automates.store.engine import transaction
    from automates.store.routines import tool_calls

    with transaction(engine) as connection:
        journaled = len(tool_calls(connection, AGENT, limit=mcp_calls + 100))
    assert journaled == mcp_calls, f"{journaled} journaled tool calls, {mcp_calls} made"
    return {"mcp_calls": mcp_calls, "journaled": journaled}


def ratios(r: dict[str, Any]) -> dict[str, float]:
    listing, running, start = r["list_routines"], r["run_now"], r["startup"]

    def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
        return round(a["p50"] / b["p50"], 1)

    return {
        "list_mcp_over_direct": ratio(listing["mcp"], listing["direct"]),
        "list_mcp_over_read_deployments": ratio(
            listing["mcp"], listing["prefect_read_deployments"]
        ),
        "list_mcp_minus_direct_ms": round(listing["mcp"]["p50"] - listing["direct"]["p50"], 1),
        "run_mcp_over_direct": ratio(running["mcp"], running["direct"]),
        "run_mcp_over_create_flow_run": ratio(running["mcp"], running["prefect_create_flow_run"]),
        "run_mcp_minus_direct_ms": round(running["mcp"]["p50"] - running["direct"]["p50"], 1),
        "startup_over_server_imports": ratio(start["legacy"], r["floors_ms"]["server_imports"]),
    }


def section(r: dict[str, Any]) -> str:
    listing, running, start = r["list_routines"], r["run_now"], r["startup"]
    x, made = r["ratios"], r["setup"]
    declared, journal = listing["phases_ms"]["declared_in"], listing["phases_ms"]["journal_insert"]
    lookup = running["phases_ms"]

    def baselines(tool: str, call: dict[str, Any], prefect: str, prefect_key: str) -> list[str]:
        """The MCP call of `tool` and its baselines, the same tool in-process and the Prefect call
        `prefect` (figures under `prefect_key`): figures, and how many times the MCP call's p50."""
        mcp = call["mcp"]
        lines = [
            "| Call | p50 (ms) | p99 (ms) | min (ms) | max (ms) | MCP p50 / its p50 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, f in (
            (f"MCP tool call `{tool}`", mcp),
            (f"`RoutineTools.{tool}()` in-process (no MCP, no journal)", call["direct"]),
            (prefect, call[prefect_key]),
        ):
            ratio = round(mcp["p50"] / f["p50"], 1)
            lines.append(
                f"| {label} | {f['p50']} | {f['p99']} | {f['min']} | {f['max']} | {ratio}x |"
            )
        return lines

    def parts(mcp: dict[str, Any], *alone: tuple[str, dict[str, Any]]) -> list[str]:
        """Parts of a call timed alone, each as a share of the MCP call's p50."""
        lines = ["| Part, timed alone | p50 (ms) | p99 (ms) | share of the MCP p50 |"]
        lines.append("|---|---:|---:|---:|")
        for label, f in alone:
            share = round(100 * f["p50"] / mcp["p50"])
            lines.append(f"| {label} | {f['p50']} | {f['p99']} | {share} % |")
        return lines

    def startup_row(label: str, f: dict[str, Any]) -> str:
        return f"| {label} | {f['p50']:g} | {f['min']:g} | {f['max']:g} |"

    lines = [
        f"Measured {r['date']} by `bench/mcp_bench.py`: one agent owning {r['routines']} prompt",
        "routines (specs inserted with `save_routine`, deployed by one in-process `automates sync`",
        f"in {made['sync_seconds']} s), reached as an agent reaches them: the official SDK's",
        "client (`mcp` 2.x `Client`, stdio) talking to `python -m automates.mcp --agent NAME`",
        "started in the layer's environment, one session, against a throw-away Prefect server and",
        "embedded PostgreSQL (the agent trusted, so run-now is allowed; no worker). Each call is",
        f"interleaved with its baselines, the order rotating; {r['warmup']} warm-up rounds, then "
        f"{r['calls']} timed",
        f"rounds; p99 by nearest rank (of {r['calls']} samples: the slowest).",
        "",
        f"list_routines with {r['routines']} routines (the answer: "
        f"{round(listing['answer_bytes'] / 1024)} KiB of JSON text, sent again as",
        "structured content):",
        "",
        *baselines(
            "list_routines",
            listing,
            "Prefect `read_deployments` of the 200 deployments (one open client)",
            "prefect_read_deployments",
        ),
        "",
        *parts(
            listing["mcp"],
            ("`declared_in`: the registry file and 200 routines read as declarations", declared),
            ("the tool-call journal insert the server makes after each call", journal),
        ),
        "",
        "Run-now (the call returns once the flow run exists):",
        "",
        *baselines(
            "run_routine",
            running,
            "Prefect `create_flow_run_from_deployment` (one open client, deployment id known)",
            "prefect_create_flow_run",
        ),
        "",
        *parts(
            running["mcp"],
            ("`declared_in` (as above: run_routine reads every declaration)", declared),
            (
                "`managed_deployment` by name on a new Prefect client (opened, closed)",
                lookup["managed_deployment_new_client"],
            ),
            (
                "`managed_deployment` by name on an open client",
                lookup["managed_deployment_open_client"],
            ),
            ("the tool-call journal insert", journal),
        ),
        "",
        f"MCP server start-up, {r['startup_runs']} fresh processes per row (`Client` entered:",
        "the process spawned until the handshake is answered), each round followed by the",
        "fresh-process floors in the same environment, timed alike (spawned until the code has",
        "run; the exit not timed):",
        "",
        "| Measure | p50 (ms) | min (ms) | max (ms) |",
        "|---|---:|---:|---:|",
        startup_row("`Client` entered, legacy `initialize` (as LLM CLIs send)", start["legacy"]),
        startup_row("`Client` entered, default mode (`server/discover` probe)", start["auto"]),
        startup_row(
            "then the session's first `list_routines` (the client lists the tools first)",
            start["first_list_routines"],
        ),
        *[
            startup_row(f"floor: a fresh `python -c` of {FLOORS[name][0]}", f)
            for name, f in r["floors_ms"].items()
        ],
        "",
        "Ratios (p50):",
        "",
        f"- list_routines through MCP / in-process: {x['list_mcp_over_direct']}x "
        f"({x['list_mcp_minus_direct_ms']:+} ms); through MCP / Prefect's `read_deployments`: "
        f"{x['list_mcp_over_read_deployments']}x.",
        f"- run_routine through MCP / in-process: {x['run_mcp_over_direct']}x "
        f"({x['run_mcp_minus_direct_ms']:+} ms); through MCP / plain "
        f"`create_flow_run_from_deployment`: {x['run_mcp_over_create_flow_run']}x.",
        f"- start-up (legacy `initialize`) / the server's imports in a fresh process: "
        f"{x['startup_over_server_imports']}x.",
    ]
    if "create_delete" in r:
        c = r["create_delete"]
        lines += [
            "",
            f"Informational, {r['creates']} extra routines through MCP, each carried to the server "
            "at once: `create_routine`",
            f"p50 {c['create_routine']['p50']:g} ms (max {c['create_routine']['max']:g}), "
            f"`delete_routine` p50 {c['delete_routine']['p50']:g} ms "
            f"(max {c['delete_routine']['max']:g}).",
        ]
    lines += [
        "",
        f"Every MCP call was journaled ({r['journal']['journaled']} rows for "
        f"{r['journal']['mcp_calls']} calls). The server's scheduler service was off (200",
        "enabled routines would otherwise get scheduled runs inserted while it measures). The",
        f"Prefect server took {r['server_start_seconds']} s to become healthy; the whole run took "
        f"{r['total_seconds']} s. No target is set",
        "by the issue: figures and ratios only.",
    ]
    return framed(
        MARKERS,
        "Agents' routine tools over MCP",
        lines,
        machine_lines(r),
        reproduce_in_checkout("uv run python -m bench.mcp_bench", "about 3 min"),
    )


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("--calls", type=int, default=50, help="timed calls per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--startup-runs", type=int, default=5, help="fresh servers per mode")
    parser.add_argument("--creates", type=int, default=10, help="extra routines made (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the /tmp work folder")
    run_and_report(parser, run, "mcp_bench", section, MARKERS, lambda r: True)


if __name__ == "__main__":
    main()
