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

PREFECT = str(Path(sys.executable).with_name("prefect"))


def worker_argv(pool: str, name: str | None = None) -> list[str]:
    """The command line of a process worker on `pool`, named after this host."""
    worker_name = name or f"{socket.gethostname()}-{pool}"
    return [PREFECT, "worker", "start", "--pool", pool, "--type", "process", "--name", worker_name]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool", default=os.environ.get("AUTOMATES_WORK_POOL", "local"))
    parser.add_argument("--name", default=None, help="Worker name (default: <host>-<pool>).")
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        parser.error("PREFECT_API_URL must point at the server, e.g. http://server:4200/api")
    command = worker_argv(args.pool, args.name)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
