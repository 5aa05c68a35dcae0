"""Timing the variants of the guard benchmark, interleaved, and judging the overhead."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RELATIVE_LIMIT = 0.10  # the guard may add 10 % of the bare run...
ABSOLUTE_LIMIT = 0.050  # ... or 50 ms, whichever is larger


def timer(call: Callable[[], Any]) -> Callable[[], float]:
    def timed() -> float:
        started = time.perf_counter()
        call()
        return time.perf_counter() - started

    return timed


def measure(variants: dict[str, Callable[[], float]], warmup: int, runs: int) -> dict[str, Any]:
    """Each variant `warmup` then `runs` times, interleaved; the order rotates each round."""
    names = list(variants)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(warmup + runs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = variants[name]()
            if round_ >= warmup:
                seconds[name].append(elapsed)
    return {name: stats(values) for name, values in seconds.items()}


def stats(values: list[float]) -> dict[str, Any]:
    cuts = statistics.quantiles(values, n=20, method="inclusive")  # 5 % steps
    return {
        "n": len(values),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p95_ms": round(cuts[18] * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "stdev_ms": round(statistics.stdev(values) * 1000, 1),
    }


def overhead(figures: dict[str, Any], guarded: str, bare: str) -> dict[str, Any]:
    g, b = figures[guarded], figures[bare]
    added = g["mean_ms"] - b["mean_ms"]
    limit = max(RELATIVE_LIMIT * b["mean_ms"], ABSOLUTE_LIMIT * 1000)
    return {
        "guarded": guarded,
        "bare": bare,
        "overhead_mean_ms": round(added, 1),
        "overhead_p50_ms": round(g["p50_ms"] - b["p50_ms"], 1),
        "overhead_percent": round(100 * added / b["mean_ms"], 1),
        "limit_ms": round(limit, 1),
        "met": added <= limit,
    }


def journal_counts(database_url: str) -> dict[str, int]:
    from sqlalchemy import text

    from automates.store.engine import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT automate, count(*) FROM automates.execution_journal GROUP BY 1")
            )
            return {name: int(count) for name, count in rows}
    finally:
        engine.dispose()


def code_version(repo: Path) -> str:
    """The commit measured, and whether the guard's code had uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "automates", "blocks")
    return f"{commit} + uncommitted changes in automates/ or blocks/" if dirty else commit
