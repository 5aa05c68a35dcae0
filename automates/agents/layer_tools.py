"""The layer's own MCP tools, mounted into a task run: the server entry and its environment.

A permission template with `layer_tools` mounts the layer's MCP server (decision 0043) under
the name `automates`, started by the LLM CLI as `python -m automates.mcp --agent AGENT`. The
agent is the task run's, fixed by the layer when it builds the command, never by the model.
The module is named by its string: the agents layer does not import the MCP server's code.

The server reads the layer's settings from its environment only. The CLI hands its MCP
servers nothing of the worker's environment but PATH, HOME and its passthrough names
(`LlmCli.environment`), so the entry carries the settings the server needs, the store's URL
(with its password) included: hence the entry's configuration travels in a private file,
never in argv (decision 0044).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from automates.settings import Settings

SERVER_NAME = "automates"
SERVER_MODULE = "automates.mcp"
# Claude Code names an MCP tool `mcp__<server>__<tool>`; a rule naming the server alone allows
# every tool of that server (checked against the real CLI in tests/integration/test_claude_cli.py).
ALLOW_RULE = f"mcp__{SERVER_NAME}"
# Prefect client settings the server needs to reach an API protected by a password or a key.
PREFECT_CLIENT_VARIABLES = ("PREFECT_API_AUTH_STRING", "PREFECT_API_KEY", "PREFECT_HOME")


def server_entry(agent: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The `.mcp.json` entry of the layer's server for `agent`, with its environment."""
    return {
        "command": sys.executable,
        "args": ["-m", SERVER_MODULE, "--agent", agent],
        "env": dict(env),
    }


def server_environment(
    settings: Settings, database_url: str | None, environ: Mapping[str, str]
) -> dict[str, str]:
    """What the layer's MCP server must see to speak for this layer: the settings given
    explicitly (the agents' rules among them) but the layer's other credentials (the gate's
    and the webhook's tokens, the payload key: it reads none of them), the resolved paths and
    URLs, the store the task run itself uses, and the Prefect client's credentials if the worker
    has any."""
    env = settings.as_env(secrets=False)
    env.update(
        AUTOMATES_PROJECT_ROOT=str(settings.project_root),
        AUTOMATES_REGISTRY_FILE=str(settings.registry_path),
        AUTOMATES_DATA_DIR=str(settings.data_path),
        AUTOMATES_PREFECT_API_URL=settings.api_url,
        PREFECT_API_URL=settings.api_url,
        AUTOMATES_WORK_POOL=settings.work_pool,
    )
    if database_url is not None:
        env["AUTOMATES_DATABASE_URL"] = database_url
    env.update({name: environ[name] for name in PREFECT_CLIENT_VARIABLES if name in environ})
    return env


class PrivateFolder:
    """A temporary folder only this user may enter (0700), created at the first file written
    (each 0600), and removed with its files by `close` (also on leaving a `with` block)."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def write(self, name: str, text: str) -> Path:
        if self.path is None:
            self.path = Path(tempfile.mkdtemp(prefix="automates-run-"))  # mode 0700
        file = self.path / name
        # Created 0600 before a byte is written: never readable by others, even for a moment.
        descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        return file

    def close(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None

    def __enter__(self) -> PrivateFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
