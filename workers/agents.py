"""The agent dispatcher for one pool: `python -m workers.agents [--pool agents]`.

`automates up` starts one on this machine for the agent pool. It polls the pool every
`--poll-seconds` (0.25 s by default: a request waits about 0.13 s on average, at the cost of
four small API reads a second) and runs each agent task run in-process
(automates/platform/agent_dispatch.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

from automates.envfiles import load_env_files
from automates.settings import Settings, env_file_paths

DEFAULT_POLL_SECONDS = 0.25


def main(argv: list[str] | None = None) -> None:
    serve(argv, __doc__, "agents", DEFAULT_POLL_SECONDS)


def serve(argv: list[str] | None, description: str | None, kind: str, poll_seconds: float) -> None:
    """Parse the command line and run the in-process worker of `kind` (agents or warm)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--pool", default=None, help=f"Work pool (default: the {kind} pool).")
    parser.add_argument("--name", default=None, help="Worker name (default: <host>-<pool>).")
    parser.add_argument("--poll-seconds", type=float, default=poll_seconds)
    args = parser.parse_args(argv)
    load_env_files(env_file_paths())
    _keep_only(kind)
    # Read by Prefect's worker loop when it starts: set before Prefect's settings load.
    os.environ["PREFECT_WORKER_QUERY_SECONDS"] = str(args.poll_seconds)
    settings = Settings()

    from automates.platform.agent_dispatch import AgentDispatcher
    from automates.platform.inprocess import WarmWorker
    from automates.server.prefect_patches import apply_all

    apply_all()
    worker_type = AgentDispatcher if kind == "agents" else WarmWorker
    pool = args.pool or (settings.agent.pool if kind == "agents" else settings.warm_pool)
    worker = worker_type(
        work_pool_name=pool,
        name=args.name or f"{socket.gethostname()}-{pool}",
        settings=settings,
    )
    worker.keep_up_to_date(settings.project_root, settings.worker_update_seconds)
    asyncio.run(worker.start())


def _keep_only(kind: str) -> None:
    """Runs share this process's environment: drop what they must not see (the checkout's
    `.env` may just have added the operator's secrets). The dispatcher keeps the operator's
    own variables for its LLM CLI (its API key); the warm worker keeps what a process worker's
    runs get (automates/platform/run_env.py)."""
    from automates.platform.run_env import run_environment, without_secrets

    keep = without_secrets(os.environ) if kind == "agents" else run_environment(os.environ)
    for name in set(os.environ) - set(keep):
        del os.environ[name]


if __name__ == "__main__":
    main()
