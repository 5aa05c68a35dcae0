"""The command line of the layer's process worker (workers/process.py): `up` builds it for
the local pool, the residential worker for its own. A module of its own, so that the
residential worker builds it without importing Prefect and the rest of the platform."""

from __future__ import annotations

import socket
import sys


def worker_argv(pool: str, name: str | None = None, limit: int | None = None) -> list[str]:
    """The command line of a process worker on `pool`, named after this host."""
    worker_name = name or f"{socket.gethostname()}-{pool}"
    argv = [sys.executable, "-m", "workers.process", "--pool", pool, "--name", worker_name]
    return argv if limit is None else [*argv, "--limit", str(limit)]
