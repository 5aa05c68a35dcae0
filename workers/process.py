"""A Prefect process worker for one work pool.

`automates up` starts one on this machine for the local pool; on another host,
`workers/start-remote-worker` runs this module, which replaces itself with the same worker
(`python -m workers.process --pool NAME`). The worker polls the server outward: a remote host
needs no inbound access.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from automates.envfiles import load_env_files

PREFECT = str(Path(sys.executable).with_name("prefect"))


def worker_argv(pool: str, name: str | None = None) -> list[str]:
    """The command line of a process worker on `pool`, named after this host."""
    worker_name = name or f"{socket.gethostname()}-{pool}"
    return [PREFECT, "worker", "start", "--pool", pool, "--type", "process", "--name", worker_name]


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
    args = parser.parse_args(argv)
    load_env_files(args.env_file)
    api_url = os.environ.get("AUTOMATES_PREFECT_API_URL") or os.environ.get("PREFECT_API_URL")
    if not api_url:
        parser.error(
            "PREFECT_API_URL (or AUTOMATES_PREFECT_API_URL) must point at the server, "
            "e.g. http://server:4200/api"
        )
    os.environ["PREFECT_API_URL"] = api_url
    pool = args.pool or os.environ.get("AUTOMATES_WORK_POOL", "local")
    command = worker_argv(pool, args.name)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
