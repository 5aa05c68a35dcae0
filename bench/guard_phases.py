"""Where a guarded run's extra time goes: a separate, instrumented pass after the timed runs.

The phases are module globals of the guard, wrapped in the benchmark process only (bench
`instrument.Phases`). The store engine is dropped first, so the pass's first run pays what
every fresh `automates.guard.engine` process pays once: loading the store block from the
server, creating the engine and opening its first connection.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.instrument import Phases

# label -> what it covers, in the order of a run
PHASES = {
    "runner._prepare": "policy and environment: journal begun, environments, log dir, env files",
    "runner._record": "state hook, whole: journal row + breaker transaction + breaker effects",
    "runner.record_run": "journal write + breaker transaction (inside the hook)",
    "recording.store": "the store engine (cached per process; first call loads the block)",
    "store.store_engine_from_block": "block load from the server + engine creation (first use)",
    "recording.record_execution": "INSERT into the execution journal",
    "breaker.record_outcome": "breaker row upsert + SELECT ... FOR UPDATE (+ UPDATE if changed)",
    "breaker.apply": "breaker effects outside the store (only on a transition)",
}


def install(phases: Phases) -> None:
    import automates.guard.breaker as breaker
    import automates.guard.recording as recording
    import automates.guard.runner as runner
    import blocks.store as store

    phases.wrap(runner, "_prepare")
    phases.wrap(runner, "_record")
    phases.wrap(runner, "record_run")
    phases.wrap(recording, "store")
    phases.wrap(store, "store_engine_from_block", "store.store_engine_from_block")
    phases.wrap(recording, "record_execution")
    phases.wrap(breaker, "record_outcome")
    phases.wrap(breaker, "apply")


def drop_store_engine(block_name: str) -> None:
    """Forget the cached store engine, as a fresh process starts without one."""
    import automates.guard.recording as recording

    recording.store(block_name).dispose()
    recording.forget_stores()


def measure(call: Callable[[], Any], block_name: str, runs: int) -> dict[str, Any]:
    """`runs` instrumented guarded runs: the first one cold (no store engine), then warm."""
    phases = Phases()
    drop_store_engine(block_name)
    install(phases)
    walls = []
    per_run: list[dict[str, float]] = []
    for _ in range(runs):
        phases.reset()
        started = time.perf_counter()
        call()
        walls.append(time.perf_counter() - started)
        per_run.append(
            {label: sum(e - s for s, e in spans) for label, spans in phases.calls.items()}
        )
    first, rest = per_run[0], per_run[1:]
    labels = [label for label in PHASES if any(label in run for run in per_run)]
    return {
        "runs": runs,
        "first_run_ms": {label: round(first.get(label, 0.0) * 1000, 2) for label in labels},
        "warm_mean_ms": {
            label: round(statistics.fmean(r.get(label, 0.0) for r in rest) * 1000, 2)
            for label in labels
        },
        "first_run_wall_ms": round(walls[0] * 1000, 1),
        "warm_wall_mean_ms": round(statistics.fmean(walls[1:]) * 1000, 1),
        "descriptions": {label: PHASES[label] for label in labels},
    }
