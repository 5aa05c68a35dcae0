"""The layer's components: how each starts (its command line and environment).

`automates up` runs them under supervisord (supervision.py, through launch.py); the
`start_*` functions run one unsupervised, tracked by a pid file, for test fixtures and tools."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from automates.errors import PlatformError
from automates.platform import ha
from automates.platform.processes import Managed
from automates.platform.run_env import run_environment, without_secrets
from automates.platform.worker_command import worker_argv
from automates.server.client import api_ready
from automates.settings import Settings
from automates.store.urls import mask_passwords, prefect_server_url

# Prefect's CLI with the server's workarounds (prefect_patches), as `prefect server ...`.
SERVER_MAIN = (sys.executable, "-m", "automates.platform.server_main", "server")
# Connections the Prefect server keeps open to its database: one per deployment sync writes at
# once (WRITE_CONCURRENCY in automates/server/deploy.py) would be 32; 20 covers the writes
# with Prefect's 10 overflow connections on top, well under PostgreSQL's 100.
SERVER_POOL_SIZE = 20
SERVER_POOL_OVERFLOW = 10  # Prefect's default


@dataclass(frozen=True)
class Launch:
    """How a component starts: its command line and its whole environment."""

    argv: list[str]
    env: dict[str, str]
    user: str | None = None  # the account it runs as, when started by root


def server(settings: Settings) -> Managed:
    return Managed("prefect-server", settings.data_path / "run")


def worker(settings: Settings, pool: str) -> Managed:
    return Managed(f"worker-{pool}", settings.data_path / "run")


def prefect_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment shared by the server, the worker and the flow runs it starts."""
    env = dict(os.environ)
    env.update(settings.as_env())
    # The guard's engine command is `python -m ...`: this environment's python comes first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(
        PREFECT_HOME=str(settings.data_path / "prefect"),
        PREFECT_API_URL=settings.api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    # The UI's browser side calls this URL; an operator exposing the UI sets it to a public one.
    env.setdefault("PREFECT_UI_API_URL", settings.api_url)
    env.update(extra)
    return env


AUTH_SETTING = "PREFECT_SERVER_API_AUTH_STRING"
CLIENT_AUTH_SETTING = "PREFECT_API_AUTH_STRING"


def loopback(host: str) -> bool:
    """Whether a bind address accepts this machine's connections only. A name other than
    `localhost` may resolve anywhere, so it does not count."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_server_bind(settings: Settings) -> None:
    """Refuse an API reachable beyond loopback without Prefect's basic auth.

    Whoever reaches the API reads the store block's password (include_secrets=true): see
    docs/decisions/0030-who-reads-the-store-secret.md.
    """
    if not loopback(settings.server.host) and not os.environ.get(AUTH_SETTING):
        raise PlatformError(
            f"AUTOMATES_SERVER_HOST={settings.server.host} makes the Prefect API reachable from "
            f"other hosts, and whoever reaches it can read the store's password: set "
            f"{AUTH_SETTING} (user:password) for the server, and {CLIENT_AUTH_SETTING} to the "
            "same value for its clients, or keep the server on 127.0.0.1 and give remote "
            "workers the gate. Nothing was started"
        )
    server_auth = os.environ.get(AUTH_SETTING)
    if server_auth and os.environ.get(CLIENT_AUTH_SETTING) != server_auth:
        raise PlatformError(
            f"{AUTH_SETTING} is set but {CLIENT_AUTH_SETTING} is not, or differs: the worker, "
            "the flow runs and this command would be refused by the API. Set it to the same "
            "user:password. Nothing was started"
        )


def ready(api_url: str) -> bool:
    return asyncio.run(api_ready(api_url))[0]


def server_launch(settings: Settings, database_url: str) -> Launch:
    """The Prefect server's command line and environment, on `database_url`."""
    pool_size, overflow = SERVER_POOL_SIZE, SERVER_POOL_OVERFLOW
    if ha.enabled(settings):
        # Each API process and the services process hold a pool: together they must stay
        # within PostgreSQL's max_connections (100 by default) beside the store's engines.
        # Measured: with 5 overflow connections, 20 runs a minute and a loaded machine exhausted
        # an API process's pool (requests failed after 30 s waiting); Prefect's 10 hold.
        pool_size = max(5, SERVER_POOL_SIZE // (settings.api_workers + 1))
    env = prefect_env(
        settings,
        PREFECT_API_DATABASE_CONNECTION_URL=prefect_server_url(database_url),
        # The scheduler looks for due schedules every 60 s by default; 10 s keeps new or
        # changed schedules visible quickly at negligible cost.
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS=os.environ.get(
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS", "10"
        ),
        # Prefect's pool keeps 5 connections and opens up to 10 more per burst, closing each
        # after its request: a cold sync would wait on connections more than on work.
        PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE=os.environ.get(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE", str(pool_size)
        ),
        PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW=os.environ.get(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW", str(overflow)
        ),
        **ha.server_environment(settings),
    )
    argv = [*SERVER_MAIN, "start", "--host", settings.server.host]
    argv += ["--port", str(settings.server.port)]
    if ha.enabled(settings):  # the API only, in N processes; the services run on their own
        argv += ["--workers", str(settings.api_workers), "--no-services"]
    return Launch(argv, env)


def services_launch(settings: Settings, database_url: str) -> Launch:
    """The Prefect server's background services (scheduler, late runs, automations...) as a
    process of their own: the highly available profile (ha.py)."""
    env = server_launch(settings, database_url).env
    return Launch([*SERVER_MAIN, "services", "start"], env)


def prepare_server_database(settings: Settings, database_url: str, timeout: float = 600.0) -> None:
    """Run Prefect's migrations and block registration once, before any API process starts
    (the highly available profile turns off each API process's own: server_setup.py)."""
    env = server_launch(settings, database_url).env
    try:
        done = subprocess.run(
            [sys.executable, "-m", "automates.platform.server_setup"],
            env=env, cwd=settings.project_root, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise PlatformError(
            f"Prefect's migrations and block registration did not end within {timeout:.0f} s"
        ) from error
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise PlatformError(
            f"Prefect's migrations or block registration failed:\n{mask_passwords(tail)}"
        )


def start_server(settings: Settings, database_url: str, timeout: float = 90.0) -> bool:
    """Start the Prefect server on `database_url` unless up, unsupervised (test fixtures and
    tools; `automates up` supervises it: supervision.py); return whether started.

    A server of ours that died (its pid file names a process that is gone) is started again.
    """
    check_server_bind(settings)
    managed = server(settings)
    if managed.pid() is not None:
        # Ours already runs (perhaps still starting): wait for it rather than start another.
        wait_ready(settings, managed, timeout)
        return False
    check_server_port(settings)
    launch = server_launch(settings, database_url)
    managed.start(launch.argv, launch.env, cwd=settings.project_root)
    wait_ready(settings, managed, timeout)
    return True


def check_server_port(settings: Settings) -> None:
    if port_taken(settings.local_api_url):
        raise PlatformError(
            f"port {settings.server.port} on {settings.server.host} is taken by another program; "
            "set AUTOMATES_SERVER_PORT to a free port"
        )


def worker_launch(settings: Settings, pool: str) -> Launch:
    """A process worker on `pool`. Its flow runs inherit its environment: the operator's
    secrets stay out of both."""
    return Launch(worker_argv(pool), run_environment(prefect_env(settings)))


def start_worker(settings: Settings, pool: str) -> bool:
    """Start a process worker on `pool` unless one of ours already runs, unsupervised (test
    fixtures; `automates up` supervises it); return whether started."""
    managed = worker(settings, pool)
    if managed.pid() is not None:
        return False
    launch = worker_launch(settings, pool)
    managed.start(launch.argv, launch.env, cwd=settings.project_root)
    return True


def inprocess_worker_launch(settings: Settings, module: str, pool: str) -> Launch:
    """The agent dispatcher (`workers.agents`) or the warm worker (`workers.warm`) on `pool`.

    Runs share the worker's process. The dispatcher's LLM CLI needs the operator's own
    variables (its API key), so it loses only the layer's credentials; the warm worker gets
    what a process worker's runs get."""
    argv = [sys.executable, "-m", module, "--pool", pool]
    env = prefect_env(settings)
    env = without_secrets(env) if module == "workers.agents" else run_environment(env)
    return Launch(argv, env)


def start_agent_dispatcher(settings: Settings, pool: str | None = None) -> bool:
    """Start the agent dispatcher on the agent pool unless one of ours already runs."""
    pool = pool or settings.agent.pool
    return _start_unsupervised(
        worker(settings, pool), inprocess_worker_launch(settings, "workers.agents", pool), settings
    )


def start_warm_worker(settings: Settings, pool: str | None = None) -> bool:
    """Start the warm worker on the warm pool unless one of ours already runs."""
    pool = pool or settings.warm_pool
    return _start_unsupervised(
        worker(settings, pool), inprocess_worker_launch(settings, "workers.warm", pool), settings
    )


def _start_unsupervised(managed: Managed, launch: Launch, settings: Settings) -> bool:
    if managed.pid() is not None:
        return False
    managed.start(launch.argv, launch.env, cwd=settings.project_root)
    return True


def alerts(settings: Settings) -> Managed:
    return Managed("alerts", settings.data_path / "run")


def alerts_launch(settings: Settings) -> Launch:
    """The alert deliverer and heartbeat (automates/alerts/). It keeps the operator's
    environment: routes read their secrets from it (decision 0033)."""
    return Launch([sys.executable, "-m", "automates.alerts"], prefect_env(settings))


def webhook(settings: Settings) -> Managed:
    return Managed("webhook", settings.data_path / "run")


def webhook_launch(settings: Settings) -> Launch:
    return Launch([sys.executable, "-m", "automates.webhook"], prefect_env(settings))


def webhook_address(settings: Settings) -> str:
    host = "127.0.0.1" if settings.webhook.host in ("0.0.0.0", "::") else settings.webhook.host
    return f"http://{host}:{settings.webhook.port}"


def start_webhook(settings: Settings, timeout: float = 30.0) -> bool:
    """Start the webhook unless ours already runs, unsupervised (test fixtures; `automates up`
    supervises it); return whether started."""
    managed = webhook(settings)
    if managed.pid() is not None:
        return False
    launch = webhook_launch(settings)
    managed.start(launch.argv, launch.env, cwd=settings.project_root)
    deadline = time.monotonic() + timeout
    while not port_taken(webhook_address(settings)):
        if managed.pid() is None or time.monotonic() > deadline:
            managed.stop()
            raise PlatformError(f"the webhook did not start:\n{managed.log_tail()}")
        time.sleep(0.3)
    return True


def launch(settings: Settings, name: str) -> Launch:
    """The command line and environment of the component `name`, as `up` names it (launch.py
    runs it under supervision). The database URL is read now: a server started before its
    database is ready fails, and supervisord starts it again."""
    from automates.store import embedded_pg
    from automates.store.database import database_url

    if name == "embedded-postgresql":
        # Prepared at every start: as root, that also gives its system user access again.
        postmaster, user = embedded_pg.prepare(settings.data_path)
        return Launch(postmaster, dict(os.environ), user)
    if name == "prefect-server":
        return server_launch(settings, database_url(settings))
    if name == "prefect-services":
        return services_launch(settings, database_url(settings))
    if name == "alerts":
        return alerts_launch(settings)
    if name == "webhook":
        return webhook_launch(settings)
    pool = name.removeprefix("worker-")
    if pool == name or not pool:
        raise PlatformError(f"no component is named {name!r}")
    if pool == settings.agent.pool:
        return inprocess_worker_launch(settings, "workers.agents", pool)
    if pool == settings.warm_pool:
        return inprocess_worker_launch(settings, "workers.warm", pool)
    return worker_launch(settings, pool)


def wait_ready(settings: Settings, managed: Managed, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready(settings.api_url):
            return
        if managed.pid() is None:
            raise PlatformError(f"the Prefect server exited at start:\n{managed.log_tail()}")
        time.sleep(0.5)
    managed.stop()
    raise PlatformError(
        f"the Prefect server was not ready after {timeout:.0f} s (/api/ready):\n"
        f"{managed.log_tail()}"
    )


def port_taken(api_url: str) -> bool:
    address = urlsplit(api_url)
    try:
        with socket.create_connection((address.hostname, address.port), timeout=0.5):
            return True
    except OSError:
        return False
