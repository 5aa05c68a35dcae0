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
from automates.platform.worker_command import worker_argv
from automates.settings import Settings

# The server's secrets must never sit on the residential machine: the store's URL, and the
# key that opens every stored payload secret (the gate opens a job's for it; decision 0048).
SERVER_ONLY = (
    "AUTOMATES_DATABASE_URL",
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "AUTOMATES_BROWSER_PAYLOAD_KEY",
)


def residential_env(settings: Settings, env: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment (`env`, the one its settings were read from): Prefect pointed
    at the gate with the worker credential."""
    gate = (settings.gate.url or "").rstrip("/")
    token = settings.gate.worker_token.get_secret_value() if settings.gate.worker_token else ""
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
        AUTOMATES_BROWSER_HOST=settings.browser.host or socket.gethostname(),
    )
    # Log batches sized for the gate's body limit (AUTOMATES_GATE_MAX_BODY_BYTES, 2 MiB):
    # Prefect's default batch is 4 MB.
    ready.setdefault("PREFECT_LOGGING_TO_API_BATCH_SIZE", "1000000")
    ready.setdefault("PREFECT_LOGGING_TO_API_MAX_LOG_SIZE", "250000")
    ready.pop("AUTOMATES_GATE_WORKER_TOKEN", None)  # flow runs authenticate as PREFECT_API_KEY
    return ready


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env-file", type=Path, action="append", default=[])
    parser.add_argument(
        "--pool", default=None, help="Default: AUTOMATES_BROWSER_POOL or residential."
    )
    args = parser.parse_args(argv)
    load_env_files(args.env_file)
    settings = Settings()
    env = residential_env(settings, os.environ)
    pool = args.pool or settings.browser.pool
    name = f"{env['AUTOMATES_BROWSER_HOST']}-{pool}"
    command = worker_argv(pool, name, limit=settings.browser.worker_limit)
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main()
