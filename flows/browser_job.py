"""Flow `browser-job`: one browser job, run by a worker of the `residential` pool.

The flow run's only parameter is the job's id: the kind and the payload stay in the private
store and reach the worker through the gate's claim, so neither is in Prefect's run history.
"""

from __future__ import annotations

import uuid

from prefect import flow

from automates.browser.runner import run_job

# The job's own timeout (at most 3600 s) is enforced inside; this bounds the run as a whole.
RUN_TIMEOUT_SECONDS = 3900


@flow(name="browser-job", timeout_seconds=RUN_TIMEOUT_SECONDS, log_prints=False)
async def browser_job(job_id: uuid.UUID) -> dict[str, int]:
    return await run_job(job_id)
