"""What the benchmark scripts share: the checkout, where results go, and progress lines."""

from __future__ import annotations

import json
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
