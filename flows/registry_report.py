"""registry-report: the registry as operators read it, published as a Prefect artifact.

For each declared automate, grouped by family: kind, caste, owners, schedules, next run, last
run state and run counts, all read from the Prefect API at run time.
"""

from __future__ import annotations

from itertools import groupby

from prefect import flow, get_run_logger
from prefect.settings import PREFECT_API_URL
from prefect.states import Completed, State

from automates.overview import AutomateStatus, gather_status
from automates.settings import Settings
from automates.store.declared import declared_registry
from tasks.reporting import markdown_table, publish_markdown

HEADERS = ("automate", "kind", "caste", "agents", "schedules", "next run", "last run", "runs")


@flow(name="registry-report")
async def registry_report() -> State:
    """Publish the registry with each automate's schedule and run history."""
    settings = Settings(prefect_api_url=PREFECT_API_URL.value())
    registry = declared_registry(settings)
    statuses = await gather_status(settings, list(registry.automates))
    markdown = render(statuses)
    counts = {
        "automates": len(statuses),
        "deployed": sum(1 for s in statuses if s.deployment),
        "failed_runs": sum(s.failed_runs for s in statuses),
    }
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    publish_markdown(key="registry-report", markdown=markdown, description=summary)
    get_run_logger().info(summary)
    return Completed(message=summary, data=counts)


def render(statuses: list[AutomateStatus]) -> str:
    parts = ["# Automate registry"]
    ordered = sorted(statuses, key=lambda s: (s.automate.family, s.automate.name))
    for family, members in groupby(ordered, key=lambda s: s.automate.family):
        rows = [
            (
                s.automate.name,
                s.automate.kind.value,
                s.automate.caste,
                ", ".join(s.automate.agents) or "-",
                "; ".join(f"{x.form.expression} {x.timezone}" for x in s.automate.schedules) or "-",
                s.next_runs[0].isoformat(timespec="minutes") if s.next_runs else "-",
                s.last_run_state or "-",
                f"{s.runs} ({s.failed_runs} failed)",
            )
            for s in members
        ]
        parts.append(f"## {family}\n\n" + markdown_table(HEADERS, rows))
    return "\n\n".join(parts) + "\n"
