"""The `residential` work pool and the `browser-job` deployment its workers pull.

Code reaches a worker through the deployment's pull step: the checkout's folder for a worker
on this machine, or a `git_clone` of the repository for a remote one, so that each run starts
from the branch's current code (the worker updates itself between jobs).
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from prefect.workers.process import ProcessWorker
from pydantic import BaseModel, ConfigDict

from automates.server.client import prefect_client
from automates.settings import Settings

FLOW_NAME = "browser-job"
ENTRYPOINT = "flows/browser_job.py:browser_job"
TAG = "managed-by:automates-browser"
# Prefect's own engine, named as the deployment's command: without one, Prefect's process
# worker starts each run under its workspace supervisor (a second Python beside the engine,
# ~2 CPU-s a job), and the fast worker cannot fork the run from its launcher. The worker's
# `python` is on the run's PATH (its virtual environment), as for the guard's command.
COMMAND = "python -m prefect.engine"
JOB_VARIABLES = {"command": COMMAND}
PARAMETER_SCHEMA = {
    "title": "Parameters",
    "type": "object",
    "properties": {"job_id": {"title": "job_id", "type": "string", "format": "uuid"}},
    "required": ["job_id"],
}


class CodeSource(BaseModel):
    """Where a worker gets the flow's code: a folder on its host, or a git repository."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    directory: str | None = None
    git_repository: str | None = None
    git_branch: str = "main"

    def pull_steps(self) -> list[dict[str, Any]]:
        if self.git_repository:
            clone = {
                "prefect.deployments.steps.git_clone": {
                    "id": "clone",
                    "repository": self.git_repository,
                    "branch": self.git_branch,
                }
            }
            into = {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": "{{ clone.directory }}"
                }
            }
            return [clone, into]
        return [{"prefect.deployments.steps.set_working_directory": {"directory": self.directory}}]


async def ensure_browser_deployment(settings: Settings, source: CodeSource | None = None) -> str:
    """Create (or bring up to date) the pool and the deployment; return the deployment's id."""
    source = source or CodeSource(directory=str(settings.project_root))
    async with prefect_client(settings.api_url) as client:
        try:
            await client.read_work_pool(settings.browser.pool)
        except ObjectNotFound:
            await client.create_work_pool(
                WorkPoolCreate(
                    name=settings.browser.pool,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                )
            )
        flow_id = await client.create_flow_from_name(FLOW_NAME)
        fields: dict[str, Any] = {
            "entrypoint": ENTRYPOINT,
            "work_pool_name": settings.browser.pool,
            "tags": [TAG],
            "description": "One browser job per run (docs/browser.md).",
            "parameter_openapi_schema": PARAMETER_SCHEMA,
            "pull_steps": source.pull_steps(),
            "job_variables": JOB_VARIABLES,
            "enforce_parameter_schema": True,
        }
        try:
            existing = await client.read_deployment_by_name(
                f"{FLOW_NAME}/{settings.browser.deployment}"
            )
        except ObjectNotFound:
            created = await client.create_deployment(
                flow_id=flow_id, name=settings.browser.deployment, **fields
            )
            return str(created)
        await client.update_deployment(existing.id, DeploymentUpdate(**fields))
        return str(existing.id)
