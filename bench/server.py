"""The throw-away server's surroundings: a clean environment, a free port, machine facts, and
the reads and deletes the benchmark makes through the Prefect client.

Nothing here imports Prefect or automates at module level: `isolate_environment` must run first,
Prefect reads its settings from the environment when it is imported.
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The pool a benchmark serves with Prefect's own process worker, default settings: the plain
# Prefect path (a fresh Python per run) the layer's workers are measured against.
PROCESS_POOL = "bench-process"


def clear_environment() -> None:
    """The ambient shell must not redirect anything: no profile, no API, no project settings."""
    for name in list(os.environ):
        if name.startswith("AUTOMATES_"):
            del os.environ[name]
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
        os.environ.pop(name, None)


def isolate_environment(data_dir: Path, no_scheduler: bool) -> None:
    """A clean environment whose Prefect home is in the run's data folder."""
    clear_environment()
    os.environ["PREFECT_HOME"] = str(data_dir / "prefect")
    (data_dir / "prefect").mkdir(parents=True)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    if no_scheduler:  # inherited by the server through components.prefect_env
        os.environ["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] = "false"


def isolated_run(prefix: str, no_scheduler: bool) -> tuple[Path, Path, int]:
    """A run's own place: a new work folder under /tmp, its data folder and a free port for the
    server, which PREFECT_API_URL names from now on (the benchmark's own Prefect calls go
    there), in an environment isolated first."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    data_dir = work / "d"  # short: the PostgreSQL socket path must stay under 107 bytes
    isolate_environment(data_dir, no_scheduler)
    port = free_port()
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    return work, data_dir, port


def with_database(settings: Any, database_url: str) -> Any:
    """The same settings naming the database `running_layer` started: the server starts before
    the URL is known, the processes and calls after it need it."""
    from automates.settings import Settings

    return Settings(**{**settings.model_dump(exclude_unset=True), "database_url": database_url})


def free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port != 4200:
            return port


def machine_facts(database_url: str) -> dict[str, Any]:
    import prefect
    import psycopg

    cpu = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = None
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    os_name = platform.system()
    try:
        with open("/etc/os-release") as release:
            fields = dict(line.rstrip("\n").split("=", 1) for line in release if "=" in line)
        os_name = fields.get("PRETTY_NAME", os_name).strip('"')
    except OSError:
        pass
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "os": f"{os_name} (kernel {platform.release()}, {platform.machine()})",
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        "postgresql": row[0] if row else "unknown",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def server_deployments(api_url: str) -> list[Any]:
    from automates.server.client import prefect_client

    async with prefect_client(api_url) as client:
        found: list[Any] = []
        while True:
            page = await client.read_deployments(limit=200, offset=len(found))
            found.extend(page)
            if len(page) < 200:
                return found


async def empty_server(api_url: str) -> None:
    """Delete every deployment and every flow through the Prefect client."""
    from automates.server.client import prefect_client

    async with prefect_client(api_url) as client:
        limit = asyncio.Semaphore(8)

        async def delete(call: Any, ident: Any) -> None:
            async with limit:
                await call(ident)

        while deployments := await client.read_deployments(limit=200):
            await asyncio.gather(*(delete(client.delete_deployment, d.id) for d in deployments))
        while flows := await client.read_flows(limit=200):
            await asyncio.gather(*(delete(client.delete_flow, f.id) for f in flows))
        assert not await client.read_deployments(limit=1), "deployments left after deleting"
        assert not await client.read_flows(limit=1), "flows left after deleting"


async def first_difference(settings: Any, registry: Any) -> dict[str, Any] | None:
    """How the first deployment `prefect deploy` made differs from what our sync declares."""
    from automates.server.client import prefect_client
    from automates.server.deployed import read_server_state
    from automates.server.spec import declared_specs, differences

    declared = declared_specs(registry, settings.project_root, settings.work_pool)
    async with prefect_client(settings.api_url) as client:
        state = await read_server_state(client)
    for name, spec in sorted(declared.items()):
        current = state.deployments.get(name)
        if current is not None and (changed := differences(spec, current.spec)):
            return {
                "deployment": name,
                "fields": {
                    field: {"ours": repr(ours)[:300], "prefect_deploy": repr(theirs)[:300]}
                    for field, (ours, theirs) in changed.items()
                },
            }
    return None


def check_deployed(api_url: str, expected: set[str], what: str) -> None:
    deployments = asyncio.run(server_deployments(api_url))
    names = {d.name for d in deployments}
    if names != expected or len(deployments) != len(expected):
        missing = sorted(expected - names)[:5]
        extra = sorted(names - expected)[:5]
        raise AssertionError(
            f"after {what}: {len(deployments)} deployments on the server, expected "
            f"{len(expected)} (missing e.g. {missing}, unexpected e.g. {extra})"
        )


@contextmanager
def running_layer(
    settings: Any, data_dir: Path, work: Path, keep: bool, result: dict[str, Any]
) -> Iterator[str]:
    """An embedded PostgreSQL and a Prefect server for one benchmark run; yields the database
    URL. Records the server's start time and the machine in `result`; stops both and removes
    the work folder (unless `keep`) however the run ends."""
    import shutil
    import time

    from automates.platform import components
    from automates.store import embedded_pg
    from bench.common import log

    try:
        log(f"embedded PostgreSQL in {data_dir}")
        database_url = embedded_pg.start(data_dir)
        log(f"Prefect server on {settings.api_url}")
        started = time.perf_counter()
        components.start_server(settings, database_url, timeout=180.0)
        result["server_start_seconds"] = round(time.perf_counter() - started, 1)
        result["machine"] = machine_facts(database_url)
        yield database_url
    finally:
        log("stopping the Prefect server and the embedded PostgreSQL")
        components.server(settings).stop()
        embedded_pg.stop(data_dir)
        if keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
