"""The one settings root of the project.

Every setting is an `AUTOMATES_*` environment variable (or a line of an env file, see
`automates.envfiles`). Paths default to folders of the checkout so that a fresh clone runs
with no configuration at all; the two URLs switch from the embedded defaults to external
services.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]

Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """Configuration of the automates layer; see docs/configuration.md."""

    # hide_input_in_errors: a refused value may be a secret (a database URL's password).
    model_config = SettingsConfigDict(
        env_prefix="AUTOMATES_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    project_root: Path = Field(
        default=PROJECT_ROOT,
        description="The checkout holding flows/ and deployments/; flow runs start here.",
    )
    data_dir: Path | None = Field(
        default=None,
        description="Where the embedded PostgreSQL, server logs and pid files live "
        "(default: <project_root>/.data).",
    )
    registry_file: Path | None = Field(
        default=None,
        description="The declarations file (default: <project_root>/deployments/registry.yaml).",
    )
    database_url: str | None = Field(
        default=None,
        repr=False,  # it holds the password
        description="An external PostgreSQL (postgresql://user:pass@host:port/db). Unset: the "
        "embedded PostgreSQL in the data folder. The Prefect server and the store share it.",
    )
    prefect_api_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AUTOMATES_PREFECT_API_URL", "PREFECT_API_URL"),
        description="An external Prefect API (http://host:4200/api). Unset: the local server "
        "started by `automates up` on server_host:server_port. PREFECT_API_URL also sets it.",
    )
    server_host: str = Field(default="127.0.0.1", description="Where `up` binds the server.")
    server_port: Port = Field(default=4200, description="Where `up` binds the server.")
    work_pool: str = Field(
        default="local", description="The process work pool served by the local worker."
    )
    warm_pool: str = Field(
        default="warm",
        description="The work pool of short automates that must start on their second, served "
        "by the warm worker (in-process, runs fetched ahead; docs/scheduling.md).",
    )
    worker_update_seconds: float = Field(
        default=0,
        ge=0,
        description="How often a worker fetches its checkout's upstream branch; when it moved "
        "ahead, the worker fast-forwards and restarts itself, only while it has no run in "
        "flight (docs/operations.md#remote-workers). 0: never.",
    )
    environment: str = Field(
        default="development",
        description="Where this process runs (e.g. production); an automate declaring "
        "`environments` runs only where this is one of them, and is skipped elsewhere.",
    )
    installable_modules: dict[str, str] = Field(
        default_factory=dict,
        description="Self-repair install allowlist, as JSON: module name → package to install "
        '(e.g. {"yaml": "pyyaml"}). A missing module not listed is only reported.',
    )
    store_block: str = Field(
        default="automates-store",
        description="Name of the prefect-sqlalchemy block that flows use to reach the store.",
    )
    agent_min_interval_seconds: int = Field(
        default=300,
        ge=1,
        description="The tightest gap between two fire times allowed for an automate that an "
        "agent declared (`origin: agent`); a schedule firing more often is refused.",
    )

    llm_cli_block: str = Field(
        default="default",
        description="Name of the automates-llm-cli block that agent task runs spawn.",
    )
    llm_cli_executable: str = Field(
        default="claude",
        description="The LLM CLI executable saved in the default automates-llm-cli block "
        "(a name looked up on PATH, or a path).",
    )
    llm_default_model: str = Field(
        default="claude-sonnet-4-6",
        description="The model used when neither the run nor the agent names one "
        "(the LLM CLI block and the `automates.agents.llm` facade).",
    )
    llm_agent_models: dict[str, str] = Field(
        default_factory=dict,
        description='Per-agent model preference, as JSON (e.g. {"scout": "claude-haiku-4-5"}).',
    )
    llm_api_base_url: str | None = Field(
        default=None,
        description="Base URL of the Messages API for the LLM facade (unset: the SDK's own, "
        "or ANTHROPIC_BASE_URL).",
    )
    llm_timeout_seconds: float = Field(
        default=120.0, gt=0, description="Per-request timeout of the LLM facade."
    )
    llm_max_retries: int = Field(
        default=2,
        ge=0,
        description="Retries of the LLM facade on 429/5xx/529 and connection errors "
        "(the anthropic SDK's own backoff).",
    )

    # Runs and agent task runs (docs/runs.md).
    agent_pool: str = Field(
        default="agents",
        description="The work pool of agent task runs, served by the agent dispatcher "
        "(an in-process worker: no Python start-up between request and CLI).",
    )
    agent_daily_budget_usd: float = Field(
        default=20.0,
        gt=0,
        description="Each agent's rolling budget: dollars over the last 24 hours, counting "
        "finished task runs' cost and running ones' per-run budget. A task run that would "
        "pass it is refused before its CLI starts.",
    )
    agent_budgets_usd: dict[str, float] = Field(
        default_factory=dict,
        description='Per-agent rolling 24-hour budgets, as JSON (e.g. {"scout": 5}); '
        "agents not listed get agent_daily_budget_usd.",
    )
    task_run_timeout_seconds: int = Field(
        default=1500,
        ge=1,
        le=1740,
        description="A task run's timeout when it is requested without one.",
    )
    task_run_max_budget_usd: float = Field(
        default=2.0,
        gt=0,
        description="A task run's per-run budget (--max-budget-usd) when requested without one.",
    )
    task_run_stuck_seconds: int = Field(
        default=900,
        ge=1,
        description="The unblock detector retries a task run pending this long without "
        "starting, or running this long without a line of output past its timeout.",
    )

    # The browser worker (docs/browser.md).
    browser_pool: str = Field(
        default="residential",
        description="The process work pool whose workers run browser jobs.",
    )
    browser_deployment: str = Field(
        default="browser-job",
        description="Name of the deployment of the `browser-job` flow that runs each job.",
    )
    browser_executable: Path = Field(
        default=Path("/usr/bin/chromium"),
        description="The Chromium that Playwright drives (Playwright's own download is not used).",
    )
    browser_headful: bool = Field(
        default=False,
        description="Run Chromium with a visible window (needs a display: DISPLAY, or Xvfb).",
    )
    browser_proxy: str | None = Field(
        default=None,
        description="Datacenter topology: a socks5://host:port proxy every browser job goes "
        "through; the egress safeguard runs before each launch.",
    )
    browser_egress_echo_url: str | None = Field(
        default=None,
        description="A URL answering the caller's IP address as plain text; the egress safeguard "
        "compares it fetched directly and through the proxy. Required with browser_proxy.",
    )
    browser_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (`name`, `address`, or either with `:port`) browser jobs may reach "
        "although they are loopback, link-local, private or the layer's own; every other "
        "host must be public (decision 0028). Needed on the enqueuing side and the worker.",
    )
    browser_job_timeout_seconds: int = Field(
        default=120,
        ge=1,
        le=3600,
        description="A job's timeout when it is enqueued without one; the browser is killed "
        "when it passes.",
    )
    run_pending_grace_seconds: int = Field(
        default=300,
        ge=30,
        le=86400,
        description="How long a run may stay Pending (a worker took it, nothing started) "
        "before run-watch re-submits it once, and after that ends it Crashed.",
    )
    missed_run_grace_seconds: int = Field(
        default=900,
        ge=0,
        le=86400,
        description="How long after a tick missed-run-check waits for its run to have started "
        "before it reports the tick as missed.",
    )
    browser_lost_grace_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="How long past its own timeout a claimed browser job may stay unreported "
        "before browser-job-watch ends it as lost (its worker kills the browser at the timeout, "
        "then reports).",
    )
    browser_screenshot_dir: Path | None = Field(
        default=None,
        description="Where a job's debug screenshots live while it runs; purged when it ends "
        "(default: the system temporary folder).",
    )
    browser_host: str | None = Field(
        default=None,
        description="The name a browser worker records on the jobs it claims (default: host name).",
    )
    browser_worker_limit: int = Field(
        default=2,
        ge=1,
        description="Browser jobs at once on a residential worker (each is a Python process and "
        "a Chromium: an unbounded worker would start one per queued job and starve the machine).",
    )
    gate_url: str | None = Field(
        default=None,
        description="The gate a residential worker reaches the server through (its env file; "
        "https://server.example.org:4300).",
    )
    gate_upstream_url: str | None = Field(
        default=None,
        description="The Prefect API the gate forwards allowed calls to (default: the API URL).",
    )
    gate_worker_token: SecretStr | None = Field(
        default=None,
        description="The residential workers' credential, checked by the gate; workers send it "
        "as PREFECT_API_KEY.",
    )
    gate_host: str = Field(default="127.0.0.1", description="Where the gate listens.")
    gate_port: Port = Field(default=4300, description="Where the gate listens.")
    gate_max_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="The largest request body the gate reads (a worker's log batch is at most "
        "1 MB); larger ones are refused 413 unread.",
    )
    gate_rate_limit: str = Field(
        default="100/second",
        description="Requests allowed per caller of the gate (its address, and the worker "
        "credential, shared by all residential workers), as '100/second' or '20/second;600/minute'"
        "; beyond: 429 with Retry-After.",
    )

    # Approvals and the webhook (docs/scheduling.md#approval, #triggers-beyond-time).
    approval_timeout_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        description="How long a run of a before_first_run automate waits for approval, "
        "suspended; then Prefect fails it.",
    )
    webhook_host: str = Field(default="127.0.0.1", description="Where the webhook listens.")
    webhook_port: Port = Field(default=4400, description="Where the webhook listens.")
    webhook_token: SecretStr | None = Field(
        default=None,
        description="The webhook's bearer token (16 characters or more); unset, one is "
        "generated once into <data folder>/webhook.token.",
    )
    webhook_max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="The largest webhook body (the run's parameters) read; larger ones are "
        "refused 413 unread.",
    )
    webhook_rate_limit: str = Field(
        default="30/minute",
        description="Webhook requests allowed per caller (its address, and the token), as "
        "'30/minute' or '5/second;100/hour'; beyond: 429 with Retry-After.",
    )
    http_read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long the gate and the webhook wait for a request's head, then for its "
        "body; a slower request is dropped (head) or refused 408 (body).",
    )

    # Alerts (docs/alerts.md).
    routes_file: Path | None = Field(
        default=None,
        description="The alert routes file (default: <project_root>/deployments/routes.yaml); "
        "absent, every alert goes to the journal route only.",
    )
    alert_max_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Sends of one alert to one route before it is dead-lettered (and announced "
        "on the fallback route).",
    )
    alert_retry_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="The wait after a route's first failed send; it doubles after each failure, "
        "up to alert_retry_max_seconds.",
    )
    alert_retry_max_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="The longest wait between two sends of one alert to one route.",
    )
    alert_send_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="How long one send may take (connect and answer) before it counts as failed.",
    )
    alert_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often the alert deliverer looks for new alerts when not woken earlier.",
    )
    heartbeat_url: SecretStr | None = Field(
        default=None,
        description="An outbound dead-man ping (healthchecks.io, Cronitor): pinged every "
        "heartbeat_interval_seconds while the layer is healthy, its /fail variant with the "
        "reason when not; whoever owns the URL hears when the pings stop.",
    )
    heartbeat_interval_seconds: int = Field(
        default=300,
        ge=5,
        le=86400,
        description="How often the heartbeat ping is sent.",
    )
    heartbeat_late_seconds: int = Field(
        default=300,
        ge=30,
        le=86400,
        description="A scheduled run this late and still not started means the layer is not "
        "healthy (the scheduler or the workers are behind).",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis (redis:// or rediss://) for the highly available profile: with it, "
        "the Prefect API runs as api_workers processes and its services as their own process, "
        "sharing events, leases and the scheduler's queue through Redis. Needs an external "
        "PostgreSQL (database_url).",
    )
    api_workers: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Prefect API processes; more than 1 needs redis_url and database_url.",
    )
    crash_loop_restarts: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="A supervised process restarted more than this many times within "
        "AUTOMATES_CRASH_LOOP_WINDOW_SECONDS is in a crash loop: it is stopped and an alert "
        "raised, until `automates up` starts it again.",
    )
    crash_loop_window_seconds: int = Field(
        default=600,
        ge=10,
        le=86400,
        description="The window in which restarts of a supervised process are counted.",
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("postgresql://", "postgresql+", "postgres://")
        ):
            raise ValueError("AUTOMATES_DATABASE_URL must be a postgresql:// URL")
        try:
            urlsplit(value or "").port  # noqa: B018 (raises on a malformed host or port)
        except ValueError:
            raise ValueError("AUTOMATES_DATABASE_URL has a malformed host or port") from None
        return value

    @cached_property
    def data_path(self) -> Path:
        """The data folder; a relative setting is taken from the project root."""
        return (self.project_root / (self.data_dir or ".data")).resolve()

    @cached_property
    def registry_path(self) -> Path:
        """The registry file; a relative setting is taken from the project root."""
        relative = self.registry_file or Path("deployments", "registry.yaml")
        return (self.project_root / relative).resolve()

    @cached_property
    def routes_path(self) -> Path:
        """The alert routes file; a relative setting is taken from the project root."""
        relative = self.routes_file or Path("deployments", "routes.yaml")
        return (self.project_root / relative).resolve()

    @property
    def embedded(self) -> bool:
        """True when the database is the embedded PostgreSQL of the data folder."""
        return self.database_url is None

    @property
    def local_api_url(self) -> str:
        """Where the server that `up` starts answers (a wildcard bind is reached on loopback)."""
        host = "127.0.0.1" if self.server_host in ("0.0.0.0", "::") else self.server_host
        return f"http://{host}:{self.server_port}/api"

    @property
    def api_url(self) -> str:
        return self.prefect_api_url or self.local_api_url

    @property
    def external_api(self) -> bool:
        """True when the Prefect API is another server than the one `up` starts here."""
        return self.prefect_api_url not in (None, self.local_api_url)

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def as_env(self) -> dict[str, str]:
        """The settings given explicitly, as the variables that give them to a child process.

        The worker hands these to every flow run it starts, so a flow run sees the same
        configuration as the command that started the worker.
        """
        env = {}
        for name in sorted(self.model_fields_set):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            # Complex values travel as JSON, which is how pydantic-settings reads them back.
            text = json.dumps(value) if isinstance(value, dict | list) else str(value)
            env[f"AUTOMATES_{name.upper()}"] = text
        return env


def env_file_paths(project_root: Path = PROJECT_ROOT) -> list[Path]:
    """The env files read at start-up, most specific first: the working folder, the checkout."""
    here = Path.cwd() / ".env"
    ours = project_root / ".env"
    return [here] if here == ours else [here, ours]


# AUTOMATES_* variables that are not settings of this root but are ours all the same.
OTHER_VARIABLES = {
    "AUTOMATES_GUARD": "the guard's policy, set in each run's environment by its deployment",
    "AUTOMATES_LOG_DIR": "a run's log folder, set by the guard",
    "AUTOMATES_TEST_DATABASE_URL": "the PostgreSQL the tests use",
}


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Each AUTOMATES_* variable in `environ` that nothing reads, with the setting it most
    likely meant: a misspelt AUTOMATES_DATABASE_URL would otherwise be ignored, and the
    embedded database used in its place."""
    known = {f"AUTOMATES_{name.upper()}" for name in Settings.model_fields} | set(OTHER_VARIABLES)
    problems = []
    for name in sorted(environ):
        if not name.startswith("AUTOMATES_") or name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"{name} is not a setting{hint}")
    return problems
