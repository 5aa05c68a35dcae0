"""The work pools sync creates, and the worker type each one is for.

A pool's type says which worker type may pull from it. Every pool is a `process` pool (Prefect's
process worker, automates/platform/process_worker.py) but two: the agent pool and the warm pool,
served by the layer's in-process workers (automates/platform/inprocess.py). Their type names
and job template live here, so that sync creates their pools without importing the workers.
"""

from __future__ import annotations

from typing import Any

from prefect.workers.base import BaseJobConfiguration, BaseVariables
from prefect.workers.process import ProcessWorker

AGENTS_POOL_TYPE = "automates-agents"
WARM_POOL_TYPE = "automates-warm"


def in_process_job_template() -> dict[str, Any]:
    """The base job template of an in-process worker's pool: Prefect's base job configuration
    and variables, which the in-process workers run with, as Prefect's
    `BaseWorker.get_default_base_job_template` renders them (tests/unit/test_pools.py holds
    the two equal)."""
    variables = BaseVariables.model_json_schema()
    variables.pop("title", None)
    return {"job_configuration": BaseJobConfiguration.json_template(), "variables": variables}


def pool_type(pool: str, *, agent_pool: str, warm_pool: str) -> tuple[str, dict[str, Any]]:
    """The type and base job template of the work pool `pool`."""
    if pool == agent_pool:
        return AGENTS_POOL_TYPE, in_process_job_template()
    if pool == warm_pool:
        return WARM_POOL_TYPE, in_process_job_template()
    return ProcessWorker.type, ProcessWorker.get_default_base_job_template()
