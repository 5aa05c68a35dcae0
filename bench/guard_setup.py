"""The guard benchmark's project, policies and flows (imported after `isolate_environment`).

The project is a copy of tests/fixtures/project declaring two automates: a Python automate on
the fixture's `hello` flow and a script automate running `true`. `automates sync` deploys them,
migrates the store and saves the store block, as `automates up` would before any guarded run.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, flow

from automates.guard.context import RunContext, in_force
from automates.guard.journal import RunJournal
from automates.guard.logs import fallback
from automates.guard.orchestrator import PrefectOrchestrator
from automates.guard.runner import guarded
from automates.guard.script import run_script
from automates.registry.loader import load_registry
from automates.registry.policy import GuardPolicy
from automates.settings import Settings

POOL = "guard-bench"
FLOW_AUTOMATE = "guard-bench-flow"
SCRIPT_AUTOMATE = "guard-bench-script"
SCRIPT_ARGV = ["true"]
TEMPLATE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "project"


def _declaration(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "oneshot",
        "caste": "horlogers",
        "family": "maintenance",  # not audits: no soft-fail
        "agents": ["atlas"],
        "description": f"guard benchmark: {name}",
        "schedules": [],
        "concurrency": "allow",  # runs back to back never wait for a slot
        "concurrency_limit": None,
        **fields,
    }


def make_project(root: Path) -> None:
    shutil.copytree(TEMPLATE, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "deployments").mkdir()
    declarations = [
        _declaration(FLOW_AUTOMATE, entrypoint="flows/hello.py:hello"),
        _declaration(SCRIPT_AUTOMATE, command=SCRIPT_ARGV),
    ]
    (root / "deployments" / "registry.yaml").write_text(
        yaml.safe_dump({"automates": declarations}, sort_keys=False)
    )


def policies(settings: Settings) -> dict[str, GuardPolicy]:
    """The guard policy of each declared automate, as its deployment carries it."""
    registry = load_registry(settings.registry_path)
    return {a.name: GuardPolicy.of(a) for a in registry.automates}


@flow(name="guard-bench-trivial")
def trivial() -> int:
    """The trivial body: nothing to do."""
    return 1


@flow(name="guard-bench-subprocess")
def bare_script(argv: list[str]) -> int:
    """A bare Prefect flow running a command the plain way."""
    return subprocess.run(argv, check=True).returncode


def bare_subprocess() -> int:
    """The floor: the command alone, no Prefect."""
    return subprocess.run(SCRIPT_ARGV, check=True).returncode


def _unguarded(script: Flow[..., Any], policy: GuardPolicy) -> Any:
    """The script flow with its declared command in force but none of the guard's work."""
    run = RunContext(
        policy=policy,
        settings=Settings(),
        flow_run=None,
        orchestrator=PrefectOrchestrator(),
        logger=fallback,
        journal=RunJournal(policy.automate),
    )
    with in_force(run):
        return script()


def variants(settings: Settings) -> tuple[dict[str, Callable[[], Any]], dict[str, float]]:
    """Every variant timed in-process, and the one-time cost of building each guarded flow
    (what `automates.guard.engine` pays once per process)."""
    found = policies(settings)
    started = time.perf_counter()
    guarded_trivial: Flow[..., Any] = guarded(trivial, found[FLOW_AUTOMATE], settings)
    build_flow = time.perf_counter() - started
    started = time.perf_counter()
    guarded_script: Flow[..., Any] = guarded(run_script, found[SCRIPT_AUTOMATE], settings)
    build_script = time.perf_counter() - started
    calls: dict[str, Callable[[], Any]] = {
        "bare_flow": trivial,
        "guarded_flow": guarded_trivial,
        "bare_subprocess": bare_subprocess,
        "bare_flow_subprocess": lambda: bare_script(argv=SCRIPT_ARGV),
        "unguarded_run_script": partial(_unguarded, run_script, found[SCRIPT_AUTOMATE]),
        "guarded_run_script": guarded_script,
    }
    return calls, {"guarded_flow": build_flow, "guarded_run_script": build_script}


def without_heartbeats(call: Callable[[], Any]) -> Callable[[], Any]:
    """The call with Prefect's flow-run heartbeat thread off (PREFECT_FLOWS_HEARTBEAT_FREQUENCY
    unset). Its default (180 s) starts a thread that sleeps in 1 s steps and is joined when the
    run ends, which holds a short sync run up to about 1 s."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    def quiet() -> Any:
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            return call()

    return quiet
