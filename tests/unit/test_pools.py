"""The pools sync creates match the workers that serve them, though sync names the workers'
types and template without importing them (automates/server/pools.py)."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.workers.base import BaseWorker
from prefect.workers.process import ProcessWorker

from automates.platform.agent_dispatch import AgentDispatcher
from automates.platform.inprocess import WarmWorker
from automates.server.pools import pool_type


@pytest.mark.parametrize(
    ("pool", "worker"),
    [("agents", AgentDispatcher), ("warm", WarmWorker), ("local", ProcessWorker)],
)
def test_each_pool_gets_the_type_and_template_of_the_worker_that_serves_it(
    pool: str, worker: type[BaseWorker[Any, Any, Any]]
) -> None:
    assert pool_type(pool, agent_pool="agents", warm_pool="warm") == (
        worker.type,
        worker.get_default_base_job_template(),
    )
