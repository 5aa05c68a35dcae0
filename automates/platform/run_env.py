"""The environment a worker and its flow runs get: the system's basics and the layer's
non-secret settings, never the operator's secrets.

A process inherits its parent's environment. Before this filter, every flow run inherited the
whole shell of `automates up` and every variable of the checkout's `.env`: the webhook token,
the database URL with its password, any cloud key an operator keeps there. A run now receives
the variables listed here, plus its deployment's own (the guard's policy) and what its
declaration asks for (its `env_files`, loaded by the guard in the run).
"""

from __future__ import annotations

from collections.abc import Mapping

# The system's basics a program expects (locale, paths, temp folders, proxies, display).
BASICS = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "TMPDIR",
        "TEMP",
        "TMP",
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "DISPLAY",
        "XDG_RUNTIME_DIR",
        "PLAYWRIGHT_BROWSERS_PATH",
    }
)
# The server's own settings (its database URL, its API auth string) stay with the server.
SERVER_ONLY_PREFIXES = ("PREFECT_API_DATABASE_", "PREFECT_SERVER_")
# Settings of the layer that are credentials: the database URL (a run reaches the store
# through the store block), the webhook's token, the gate's worker credential, the heartbeat
# ping URL (whoever holds it can fake the layer's pings), Redis's URL (its password) and the
# key of browser-job payload secrets (decision 0048).
SECRET_SETTINGS = frozenset(
    {
        "AUTOMATES_DATABASE_URL",
        "AUTOMATES_WEBHOOK_TOKEN",
        "AUTOMATES_GATE_WORKER_TOKEN",
        "AUTOMATES_HEARTBEAT_URL",
        "AUTOMATES_REDIS_URL",
        "AUTOMATES_BROWSER_PAYLOAD_KEY",
    }
)


def passed_on(name: str) -> bool:
    """Whether a variable of the worker's environment reaches its flow runs."""
    if name in BASICS or name.startswith("LC_"):
        return True
    if name.startswith("PREFECT_"):
        return not name.startswith(SERVER_ONLY_PREFIXES)
    if name.startswith("AUTOMATES_"):
        return name not in SECRET_SETTINGS
    return False


def run_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of `environ` a worker and its flow runs may see."""
    return {name: value for name, value in environ.items() if passed_on(name)}


def without_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` minus the layer's credentials and the server's settings: for the agent
    dispatcher, whose LLM CLI needs the operator's own variables (its API key, its config)."""
    return {
        name: value
        for name, value in environ.items()
        if name not in SECRET_SETTINGS and not name.startswith(SERVER_ONLY_PREFIXES)
    }
