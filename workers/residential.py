"""A residential browser worker: a process worker on the `residential` pool, behind the gate.

`workers/residential-worker ENV_FILE` runs this on the residential machine. The env file holds
the gate's URL and the worker's credential, nothing of the server's: no database URL, no admin
API. The worker only ever connects outward (to the gate); it needs no inbound port.

    AUTOMATES_GATE_URL=https://server.example.org:4300
    AUTOMATES_GATE_WORKER_TOKEN=...          # the credential the gate checks
    AUTOMATES_BROWSER_HOST=home-office       # optional: the name recorded on claimed jobs
    AUTOMATES_BROWSER_HEADFUL=true           # optional: a visible Chromium (needs DISPLAY)
    AUTOMATES_BROWSER_WORKER_LIMIT=2         # optional: browsers at once on this machine
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from automates.envfiles import load_env_files
from workers.process import worker_argv

# The server's secrets must never sit on the residential machine.
SERVER_ONLY = ("AUTOMATES_DATABASE_URL", "PREFECT_API_DATABASE_CONNECTION_URL")


def residential_env(env: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment: Prefect pointed at the gate with the worker credential."""
    gate = env.get("AUTOMATES_GATE_URL", "").rstrip("/")
    token = env.get("AUTOMATES_GATE_WORKER_TOKEN", "")
    if not gate.startswith(("http://", "https://")):
        raise SystemExit("AUTOMATES_GATE_URL must be the gate's http(s):// URL")
    if len(token) < 16:
        raise SystemExit("AUTOMATES_GATE_WORKER_TOKEN must be set (16 characters or more)")
    leaked = [name for name in SERVER_ONLY if env.get(name)]
    if leaked:
        raise SystemExit(f"refusing to start with server secrets present: {', '.join(leaked)}")
    ready = dict(env)
    ready.update(
        PREFECT_API_URL=f"{gate}/api",
        PREFECT_API_KEY=token,
        AUTOMATES_BROWSER_HOST=env.get("AUTOMATES_BROWSER_HOST") or socket.gethostname(),
    )
    # Log batches sized for the gate's body limit (AUTOMATES_GATE_MAX_BODY_BYTES, 2 MiB):
    # Prefect's default batch is 4 MB.
    ready.setdefault("PREFECT_LOGGING_TO_API_BATCH_SIZE", "1000000")
    ready.setdefault("PREFECT_LOGGING_TO_API_MAX_LOG_SIZE", "250000")
    ready.pop("AUTOMATES_GATE_WORKER_TOKEN")  # flow runs authenticate as PREFECT_API_KEY
    return ready


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env-file", type=Path, action="append", default=[])
    parser.add_argument(
        "--pool", default=None, help="Default: AUTOMATES_BROWSER_POOL or residential."
    )
    args = parser.parse_args(argv)
    load_env_files(args.env_file)
    env = residential_env(os.environ)
    pool = args.pool or env.get("AUTOMATES_BROWSER_POOL", "residential")
    # Each job is a Python process and a Chromium: an unbounded worker would start one per
    # queued job and starve the machine.
    limit = env.get("AUTOMATES_BROWSER_WORKER_LIMIT", "2")
    if not limit.isdigit() or int(limit) < 1:
        raise SystemExit("AUTOMATES_BROWSER_WORKER_LIMIT must be a whole number of 1 or more")
    command = [*worker_argv(pool, f"{env['AUTOMATES_BROWSER_HOST']}-{pool}"), "--limit", limit]
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main()
