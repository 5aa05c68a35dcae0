"""The layer's process worker for one work pool: `python -m workers.process --pool NAME`.

`automates up` starts one on this machine for the local pool; on another host,
`workers/start-remote-worker` runs this module, and the residential worker runs it behind the
gate. It is Prefect's process worker (automates/platform/process_worker.py) that admits only
declared runs and hands them no operator secret, and starts them in its own checkout
(AUTOMATES_PROJECT_ROOT, by default the one this module sits in). With AUTOMATES_FAST_START
(the default) it picks runs up from the server's event stream and forks each run's process
from a launcher that has Prefect and the flows imported (automates/platform/fast_worker.py). With
AUTOMATES_WORKER_UPDATE_SECONDS set, it keeps that checkout on its upstream branch between
runs and restarts itself on the new code. It polls the server outward: a remote host needs no
inbound access.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from automates.envfiles import load_env_files
from automates.settings import Settings

if TYPE_CHECKING:
    from automates.platform.process_worker import GuardedProcessWorker

# The fast worker's fallback poll (automates/platform/fast_worker.py POLL_SECONDS; not
# imported from there, which would import Prefect before its settings are set).
FAST_POLL_SECONDS = 5


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--env-file",
        type=Path,
        action="append",
        default=[],
        help="Env file(s) to load; variables already set win over them.",
    )
    parser.add_argument("--pool", default=None, help="Work pool (default: AUTOMATES_WORK_POOL).")
    parser.add_argument("--name", default=None, help="Worker name (default: <host>-<pool>).")
    parser.add_argument("--limit", type=int, default=None, help="Runs at once (default: any).")
    args = parser.parse_args(argv)
    load_env_files(args.env_file)
    settings = Settings()
    api_url = settings.prefect_api_url  # AUTOMATES_PREFECT_API_URL, else PREFECT_API_URL
    if not api_url:
        parser.error(
            "PREFECT_API_URL (or AUTOMATES_PREFECT_API_URL) must point at the server, "
            "e.g. http://server:4200/api"
        )
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be 1 or more")
    os.environ["PREFECT_API_URL"] = api_url  # before Prefect reads its settings
    if settings.fast_start:
        # The fast worker's fallback poll, also before Prefect reads its settings (the next
        # import does); an operator's own value wins.
        os.environ.setdefault("PREFECT_WORKER_QUERY_SECONDS", str(FAST_POLL_SECONDS))
    from automates.server.prefect_patches import apply_all

    apply_all()
    pool = args.pool or settings.work_pool
    name = args.name or f"{socket.gethostname()}-{pool}"
    if settings.fast_start:
        from automates.platform.fast_worker import FastProcessWorker

        worker: GuardedProcessWorker = FastProcessWorker(
            work_pool_name=pool, name=name, limit=args.limit, checkout=settings.project_root
        )
    else:
        from automates.platform.process_worker import GuardedProcessWorker

        worker = GuardedProcessWorker(
            work_pool_name=pool, name=name, limit=args.limit, checkout=settings.project_root
        )
    worker.keep_up_to_date(settings.project_root, settings.worker_update_seconds)
    asyncio.run(worker.start())


if __name__ == "__main__":
    main()
