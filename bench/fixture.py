"""The generated project: a copy of tests/fixtures/project with 200 recurring declarations."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

COUNT = 200
POOL = "bench"
TEMPLATE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "project"

CRONS = [
    "*/5 * * * *",
    "{m} * * * *",
    "{m} 3 * * *",
    "{m} 2 * * 1-5",
    "{m} */6 * * *",
    "0 0 1 * *",
    "{m} 23 * * 0",
    "*/20 8-18 * * 1-5",
    "{m} 12 * * 6",
    "5 4 1,15 * *",
    "{m} 9-17/2 * * *",
    "0 {h} * * 2,4",
]
TIMEZONES = [
    "UTC",
    "Asia/Makassar",
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Africa/Nairobi",
    "Europe/London",
    "Pacific/Auckland",
    "Asia/Kolkata",
    "America/Los_Angeles",
]
CASTES = ["vigies", "horlogers", "oracles", "scribes"]
FAMILIES = ["audits", "maintenance", "reporting", "sre", "backups", "ingest"]
AGENTS = ["atlas", "hermes", "iris", "nyx", "orion"]


def declarations(count: int = COUNT) -> list[dict[str, Any]]:
    """`count` valid recurring declarations on flows/hello.py:hello, deterministic."""
    out = []
    for i in range(1, count + 1):
        cron = CRONS[i % len(CRONS)].format(m=(i * 7) % 60, h=i % 24)
        schedules: list[dict[str, Any]] = [
            {"slug": "main", "cron": cron, "timezone": TIMEZONES[i % len(TIMEZONES)]}
        ]
        if i % 4 == 0:  # a quarter have a second schedule, with its own parameters
            schedules.append(
                {
                    "slug": "weekly",
                    "cron": f"{i % 60} 6 * * 1",
                    "timezone": TIMEZONES[(i * 5 + 3) % len(TIMEZONES)],
                    "parameters": {"greeting": f"weekly {i}"},
                }
            )
        agents = [AGENTS[i % len(AGENTS)]]
        if i % 3 == 0:
            agents.append(AGENTS[(i + 2) % len(AGENTS)])
        declaration: dict[str, Any] = {
            "name": f"bench-{i:04d}",
            "kind": "recurring",
            "caste": CASTES[i % len(CASTES)],
            "family": FAMILIES[i % len(FAMILIES)],
            "agents": agents,
            "description": f"benchmark automate number {i}",
            "entrypoint": "flows/hello.py:hello",
            "schedules": schedules,
        }
        if i % 7 == 0:
            declaration["parameters"] = {"greeting": f"hello {i}"}
        if i % 10 == 0:
            declaration.update(concurrency="allow", concurrency_limit=None)  # unlimited
        elif i % 10 == 5:
            declaration.update(concurrency="allow", concurrency_limit=2)
        out.append(declaration)
    return out


def make_project(root: Path) -> None:
    import yaml

    shutil.copytree(TEMPLATE, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "deployments").mkdir()
    (root / "deployments" / "registry.yaml").write_text(
        yaml.safe_dump({"automates": declarations()}, sort_keys=False)
    )
