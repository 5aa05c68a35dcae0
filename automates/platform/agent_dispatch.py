"""The agent dispatcher: the in-process worker (automates/platform/inprocess.py) of the agent
pool (type AGENTS_POOL_TYPE, automates/server/pools.py, which sync gives that pool).

An agent task run does almost nothing in Python — it waits on the LLM CLI — so the dispatcher
keeps Prefect, the flow and the store connection warm, polls its pool often, and runs each
flow run with Prefect's own engine in a thread, under the same guard as every other
deployment (docs/decisions/0015-agent-dispatcher.md).

Cancellation: the flow itself watches its run's state and terminates the CLI's process group
when an operator cancels (flows/agent_task_run.py), so the dispatcher never kills a thread.
"""

from __future__ import annotations

from automates.platform.inprocess import InProcessResult, InProcessWorker
from automates.server.pools import AGENTS_POOL_TYPE

# Agent task runs of one dispatcher running at once (threads waiting on CLI processes).
DEFAULT_SLOTS = 8

AgentDispatcherResult = InProcessResult


class AgentDispatcher(InProcessWorker):
    type = AGENTS_POOL_TYPE
    default_slots = DEFAULT_SLOTS
    _description = (
        "Runs agent task runs inside the worker process with Prefect's engine: no interpreter "
        "start-up between a request and the LLM CLI."
    )
    _display_name = "Automates agent dispatcher"
