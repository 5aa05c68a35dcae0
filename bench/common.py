"""What the benchmark scripts share: the checkout, where results go, and progress lines."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"  # git-ignored


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)


def save_result(name: str, result: dict[str, Any]) -> None:
    """Keep a run's JSON under bench/results/ and print it on stdout."""
    text = json.dumps(result, indent=2, default=str)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    print(text)


def machine() -> dict[str, Any]:
    """The facts every benchmark records beside its figures (a benchmark adds its own)."""
    import prefect

    def first(path: str, prefix: str) -> str | None:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
        return None

    memory = first("/proc/meminfo", "MemTotal:")
    return {
        "cpu": first("/proc/cpuinfo", "model name") or "unknown",
        "cores": os.cpu_count(),
        "ram_gib": None if memory is None else round(int(memory.split()[0]) / 2**20, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
