"""Part 3 (informational): one flow run per fresh process, as the process worker starts it.

The worker runs `python -m prefect.engine` for an unguarded deployment and
`python -m automates.guard.engine` (with `AUTOMATES_GUARD`) for a guarded one, each in a new
process with `PREFECT__FLOW_RUN_ID`. Here the benchmark creates the flow run from the synced
deployment (untimed), then times the engine process from start to exit; the worker's polling
and process bookkeeping are left out.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from bench.timed import run_timed

ENGINES = {
    "bare_engine": "prefect.engine",
    "guard_engine": "automates.guard.engine",
}


async def _deployment_id(api_url: str, full_name: str) -> UUID:
    from automates.server.client import prefect_client

    async with prefect_client(api_url) as client:
        deployment = await client.read_deployment_by_name(full_name)
    return deployment.id


async def _new_run(api_url: str, deployment_id: UUID) -> UUID:
    from automates.server.client import prefect_client

    async with prefect_client(api_url) as client:
        flow_run = await client.create_flow_run_from_deployment(deployment_id)
    return flow_run.id


async def _final_state(api_url: str, flow_run_id: UUID) -> str | None:
    from automates.server.client import prefect_client

    async with prefect_client(api_url) as client:
        flow_run = await client.read_flow_run(flow_run_id)
    return flow_run.state_name


class EngineRuns:
    """Runs of one deployment, each in a fresh engine process."""

    def __init__(self, settings: Any, deployment: str, guard_env: str, project: Path) -> None:
        from automates.platform import components
        from automates.registry.policy import GUARD_ENV

        self.api_url: str = settings.api_url
        self.project = project
        self.deployment_id = asyncio.run(_deployment_id(self.api_url, deployment))
        base = components.prefect_env(settings)
        base.pop("PREFECT_PROFILE", None)
        ours = settings.as_env()
        for name in [n for n in base if n.startswith("AUTOMATES_") and n not in ours]:
            del base[name]  # e.g. the bench's own AUTOMATES_GUARD or the guard's log folder
        self.env = {"bare_engine": base, "guard_engine": {**base, GUARD_ENV: guard_env}}

    def run(self, variant: str) -> float:
        flow_run_id = asyncio.run(_new_run(self.api_url, self.deployment_id))
        env = {**self.env[variant], "PREFECT__FLOW_RUN_ID": str(flow_run_id)}
        seconds, completed = run_timed([sys.executable, "-m", ENGINES[variant]], self.project, env)
        state = asyncio.run(_final_state(self.api_url, flow_run_id))
        if completed.returncode != 0 or state != "Completed":
            raise RuntimeError(
                f"{ENGINES[variant]} exited {completed.returncode}, run state {state!r}:\n"
                f"{completed.stdout[-1500:]}\n{completed.stderr[-1500:]}"
            )
        return seconds

    def callables(self) -> dict[str, Any]:
        return {variant: (lambda v=variant: self.run(v)) for variant in ENGINES}


# What a guard engine process imports beyond Prefect's own engine, timed in a fresh process:
# each step counts only the modules it imports first (the guard's large dependencies first).
IMPORT_STEPS = (
    ("prefect.engine", "`prefect.engine` + `prefect.flow_engine` (paid by both engines)"),
    ("prefect.flow_engine", None),
    ("sqlalchemy", "`sqlalchemy` (core)"),
    ("sqlalchemy.dialects.postgresql", "`sqlalchemy.dialects.postgresql`"),
    ("alembic", "`alembic` (imported by `automates.store.engine` at module level)"),
    ("automates.guard.engine", "`automates.guard.engine`"),
    ("automates.guard.runner", "`automates.guard.runner` (the rest)"),
    ("prefect_sqlalchemy", "`prefect_sqlalchemy` (imported by `blocks.store`)"),
    ("blocks.store", "`blocks.store` (the rest)"),
)
IMPORTS = """
import importlib, json, sys, time
steps, label = {}, None
for module, name in json.loads(sys.argv[1]):
    label = name or label
    started = time.perf_counter()
    importlib.import_module(module)
    steps[label] = steps.get(label, 0.0) + time.perf_counter() - started
print(json.dumps(steps))
"""


def import_costs(env: dict[str, str], cwd: Path, samples: int) -> dict[str, float]:
    """Mean import time (ms) of each step of IMPORT_STEPS, in `samples` fresh processes."""
    import statistics

    found: dict[str, list[float]] = {}
    for _ in range(samples):
        completed = subprocess.run(
            [sys.executable, "-c", IMPORTS, json.dumps(IMPORT_STEPS)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        for step, seconds in json.loads(completed.stdout.splitlines()[-1]).items():
            found.setdefault(step, []).append(seconds)
    return {step: round(statistics.fmean(v) * 1000, 1) for step, v in found.items()}
