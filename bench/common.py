"""What the benchmark scripts share: the checkout, where results go, progress lines, the
summary of timed samples, and the end of their `main`."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from bench.doc import write_section

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


def percentile(ordered: list[float], share: float) -> float:
    """The sample at `share` of the sorted samples, nearest rank without interpolation: the
    p99 every benchmark here reports, so their figures compare."""
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def spread(samples: list[float], digits: int) -> dict[str, float]:
    """p50, p99, min and max of (non-empty) samples, rounded to `digits`."""
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), digits),
        "p99": round(percentile(ordered, 0.99), digits),
        "min": round(ordered[0], digits),
        "max": round(ordered[-1], digits),
    }


def doc_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's option parser whose `--help` shows its module docstring (`doc`) as
    written, line breaks and command examples kept."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def run_and_report(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], dict[str, Any]],
    name: str,
    section: Callable[[dict[str, Any]], str],
    markers: tuple[str, str],
    met: Callable[[dict[str, Any]], bool],
) -> NoReturn:
    """The end of a benchmark's `main`, once its own options are declared: run it, keep its JSON
    (`save_result(name, ...)`), rewrite its section of docs/benchmarks.md between `markers`
    unless `--no-doc`, and exit 0 when `met` says its target is met, 1 when not."""
    parser.add_argument("--no-doc", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()
    # SIGTERM ends the run as Ctrl-C does: its `finally` blocks stop what it started.
    signal.signal(signal.SIGTERM, lambda number, _: sys.exit(128 + number))
    result = run(args)
    save_result(name, result)
    if not args.no_doc:
        write_section(section(result), *markers)
    sys.exit(0 if met(result) else 1)
