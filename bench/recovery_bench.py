"""Benchmark: how long a process of the layer is gone after a kill -9, under supervision.

    uv run python -m bench.recovery_bench              # run, print JSON, rewrite its doc section
    uv run python -m bench.recovery_bench --no-doc --trials 2   # a quick look

Brings up a layer with `automates up` on embedded defaults in a temporary data folder (free
port, the shipped registry), then for each supervised process, `--trials` times: kill -9 (its
process group; the postmaster alone, as a crash would), and time until it serves again:
- embedded-postgresql and prefect-server: a new process, and `/api/ready` answers 200 again
  (the server reaches its database);
- the workers, the dispatcher and alerts: supervisord has it RUNNING again with a new pid (it
  outlived supervisord's 3 s `startsecs`).

Baseline, in the same minute: the same process stopped cleanly and started through
supervisord (`startProcess`), timed to the same condition: what the process itself costs to
start. recovery / baseline near 1 means supervision adds nothing but the restart. Target (issue
14): every process back within 10 s (p50). Exit 1 when a p50 misses it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import REPO, log, run_and_report
from bench.common import machine as common_machine
from bench.doc import brief_machine_lines, framed, markers
from bench.server import free_port

MARKERS = markers("recovery-bench", "bench/recovery_bench.py")
TARGET_SECONDS = 10.0
WAIT_SECONDS = 180.0
API_COMPONENTS = ("prefect-server", "embedded-postgresql")
COMPONENTS = ("worker-local", "worker-agents", "alerts", "prefect-server", "embedded-postgresql")


class Layer:
    def __init__(self, root: Path) -> None:
        from automates.platform.supervision import Supervisor

        self.port = free_port()
        self.data = root / "data"
        self.env = {**os.environ, "AUTOMATES_DATA_DIR": str(self.data)}
        self.env["AUTOMATES_SERVER_PORT"] = str(self.port)
        self.env.pop("AUTOMATES_DATABASE_URL", None)
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.supervisor = Supervisor(self.data / "run")

    def cli(self, *args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "automates.cli", *args, "--json"],
            env=self.env, cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode not in (0, 1):
            raise RuntimeError(done.stdout + done.stderr)
        return json.loads(done.stdout)

    def pid(self, name: str) -> int | None:
        return self.supervisor.programs()[name].pid

    def serving(self, name: str, old_pid: int | None) -> bool:
        """The database and the server serve when the API is ready again (supervisord calls
        them RUNNING only 3 s after their start); the others when supervisord has them
        RUNNING again."""
        from automates.platform.components import ready
        from automates.platform.supervision import ALIVE, ProgramState

        info = self.supervisor.programs()[name]
        if info.pid in (None, old_pid):
            return False
        if name in API_COMPONENTS:
            return info.state in ALIVE and ready(self.api)
        return info.state == ProgramState.RUNNING


def _timed(condition: Callable[[], bool]) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > WAIT_SECONDS:
            raise RuntimeError(f"not back within {WAIT_SECONDS:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - started


def recovery(layer: Layer, name: str) -> float:
    pid = layer.pid(name)
    assert pid is not None, name
    started = time.monotonic()
    if name == "embedded-postgresql":
        os.kill(pid, signal.SIGKILL)  # the postmaster crashes; its backends follow
    else:
        os.killpg(pid, signal.SIGKILL)
    _timed(lambda: layer.serving(name, pid))
    return time.monotonic() - started


def bare_start(layer: Layer, name: str) -> float:
    pid = layer.pid(name)
    layer.supervisor.stop_program(name)
    started = time.monotonic()
    layer.supervisor.start_program(name)
    _timed(lambda: layer.serving(name, pid))
    return time.monotonic() - started


def settle(layer: Layer) -> None:
    """Wait until the whole layer is ok (a database restart may make workers restart too)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not layer.cli("status")["ok"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the layer did not come back whole")
        time.sleep(1)


def machine() -> dict[str, Any]:
    import supervisor

    version = getattr(supervisor, "__version__", "4.3")
    return {**common_machine(), "supervisor": version}


def run(trials: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="automates-recovery-") as folder:
        layer = Layer(Path(folder))
        result: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds")}
        result["machine"] = machine()
        log(f"up on port {layer.port}")
        layer.cli("up")
        try:
            settle(layer)
            components: dict[str, Any] = {}
            for name in COMPONENTS:
                kills, bares = [], []
                for trial in range(trials):
                    kills.append(recovery(layer, name))
                    settle(layer)
                    bares.append(bare_start(layer, name))
                    settle(layer)
                    log(f"{name} {trial + 1}: kill {kills[-1]:.2f} s, start {bares[-1]:.2f} s")
                p50, base = statistics.median(kills), statistics.median(bares)
                components[name] = {
                    "recovery_seconds": [round(x, 2) for x in kills],
                    "bare_start_seconds": [round(x, 2) for x in bares],
                    "recovery_p50": round(p50, 2),
                    "bare_start_p50": round(base, 2),
                    "ratio": round(p50 / base, 2),
                    "met": p50 < TARGET_SECONDS,
                }
            result["components"] = components
            result["restarts"] = {
                n: e["restarts"] for n, e in layer.cli("status")["components"].items()
            }
        finally:
            layer.cli("down")
    return result


def section(r: dict[str, Any]) -> str:
    rows = [
        f"| {name} | {x['recovery_p50']:.2f} | {max(x['recovery_seconds']):.2f} | "
        f"{x['bare_start_p50']:.2f} | {x['ratio']}x | {'met' if x['met'] else '**not met**'} |"
        for name, x in r["components"].items()
    ]
    trials = len(next(iter(r["components"].values()))["recovery_seconds"])
    return framed(
        MARKERS,
        "Recovery after kill -9, under supervision",
        [
            f"Measured {r['date']} by `bench/recovery_bench.py`: one layer from `automates up`",
            f"on embedded defaults; each process killed with SIGKILL {trials} times (its process",
            "group; the postmaster alone), timed until it serves again: a new process and",
            "`/api/ready` 200 for the database and the server; RUNNING again with a new pid for",
            "the others (supervisord says RUNNING once a process has lived 3 s, `startsecs`: the",
            "floor of those rows). Baseline in the same minute: the same process stopped cleanly",
            "and started through supervisord, to the same condition.",
            "",
            "| Process | Recovery p50 (s) | max (s) | Clean start p50 (s) | Ratio | < 10 s |",
            "|---|---:|---:|---:|---:|---|",
            *rows,
        ],
        brief_machine_lines(r["machine"]),
        f"Reproduce: `uv run python -m bench.recovery_bench` (about {trials * 2} restarts per "
        "process).",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=5)
    run_and_report(
        parser,
        lambda args: run(args.trials),
        "recovery",
        section,
        MARKERS,
        lambda r: all(x["met"] for x in r["components"].values()),
    )


if __name__ == "__main__":
    main()
