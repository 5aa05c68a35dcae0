"""browser-job-watch: browser jobs no residential worker will ever report on are ended.

A running job whose worker died becomes `lost` (what it did is unknown; it is never re-run
here), a queued job whose flow run ended before any claim becomes `failed`
(automates/browser/watch.py). Each one is a finding: the run ends Completed, named "Findings",
with a table of them as an artifact and one Prefect event each
(`automates.browser.job.lost` / `.failed`) for automations to notify on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.states import Completed, State

from automates.browser.watch import announce, end_unreported
from automates.guard.recording import store
from automates.settings import Settings
from automates.states import BrowserJobStatus
from tasks.reporting import markdown_table, publish_markdown


@flow(name="browser-job-watch", log_prints=False)
def browser_job_watch(grace_seconds: int | None = None) -> State:
    """End the browser jobs no worker will report on; findings when there were any."""
    settings = Settings()
    grace = timedelta(
        seconds=settings.browser.lost_grace_seconds if grace_seconds is None else grace_seconds
    )
    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        ended, open_jobs = end_unreported(
            store(settings.store_block), client, datetime.now(UTC), grace
        )
    for job in ended:
        logger.warning("browser job %s (%s) %s: %s", job.job_id, job.kind, job.status, job.reason)
        announce(job)
    lost = sum(1 for job in ended if job.status == BrowserJobStatus.LOST)
    summary = (
        f"{lost} lost, {len(ended) - lost} failed unclaimed, {open_jobs} still queued or running"
    )
    logger.info(summary)
    rows = [(j.job_id, j.kind, j.host or "-", j.status, j.reason) for j in ended]
    publish_markdown(
        key="browser-job-watch",
        markdown=f"# Browser job watch\n\n{summary}.\n\n"
        + (markdown_table(("job", "kind", "host", "now", "why"), rows) if rows else ""),
        description=summary,
    )
    data = {"ended": [j.model_dump(mode="json") for j in ended], "open": open_jobs}
    if ended:
        return Completed(name="Findings", message=summary, data=data)
    return Completed(message=summary, data=data)
