"""The groups of the settings root: one model per part of the layer, as Prefect groups its own.

A group's settings are read from `AUTOMATES_<GROUP>_<NAME>`: `AUTOMATES_GATE_PORT` is
`settings.gate.port`. The variables are the ones the layer always had; the groups only give
each part of the layer its own namespace in code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

Port = Annotated[int, Field(ge=1, le=65535)]


class Group(BaseModel):
    """A group of settings: frozen like the root; a variable it does not know is reported by
    `unknown_variables`, not refused here (the root ignores unknown ones the same way)."""

    # hide_input_in_errors: a refused value may be a secret (a token).
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


class ServerSettings(Group):
    """The local Prefect server that `automates up` starts."""

    host: str = Field(default="127.0.0.1", description="Where `up` binds the server.")
    port: Port = Field(default=4200, description="Where `up` binds the server.")


class AgentSettings(Group):
    """Agents: their pool, their routines' tightest interval and their budgets (docs/runs.md)."""

    pool: str = Field(
        default="agents",
        description="The work pool of agent task runs, served by the agent dispatcher "
        "(an in-process worker: no Python start-up between request and CLI).",
    )
    min_interval_seconds: int = Field(
        default=300,
        ge=1,
        description="The tightest gap between two fire times allowed for an automate that an "
        "agent declared (`origin: agent`); a schedule firing more often is refused.",
    )
    daily_budget_usd: float = Field(
        default=20.0,
        gt=0,
        description="Each agent's rolling budget: dollars over the last 24 hours, counting "
        "finished task runs' cost and running ones' per-run budget. A task run that would "
        "pass it is refused before its CLI starts.",
    )
    budgets_usd: dict[str, float] = Field(
        default_factory=dict,
        description='Per-agent rolling 24-hour budgets, as JSON (e.g. {"scout": 5}); '
        "agents not listed get AUTOMATES_AGENT_DAILY_BUDGET_USD.",
    )
    trusted: tuple[str, ...] = Field(
        default=(),
        description="Agents whose routines are enabled as soon as they are made, as JSON "
        '(e.g. ["scout"]); any other agent\'s routine waits for `automates approve NAME` '
        "(approval: before_enable).",
    )
    read_grants: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Agents whose routines another agent may read (never change), as JSON "
        '(e.g. {"atlas": ["scout"]}); by default an agent sees only its own routines and the '
        "operator's automates that list it in `agents`.",
    )
    max_routines: int = Field(
        default=20,
        ge=0,
        le=500,
        description="The most routines one agent may have; a routine past it is refused.",
    )
    routine_templates: tuple[str, ...] = Field(
        default=("research",),
        description="The permission templates an agent's prompt routine may run under, as JSON: "
        "a routine never grants its runs more than the operator allows here.",
    )
    routine_entrypoints: tuple[str, ...] = Field(
        default=(),
        description="The flows (`path/file.py:function`) an agent's routine may run instead of "
        "a prompt, as JSON; by default a routine runs only a prompt, as an agent task run.",
    )


class LlmSettings(Group):
    """The LLM CLI block that task runs spawn, and the `automates.agents.llm` facade."""

    cli_block: str = Field(
        default="default",
        description="Name of the automates-llm-cli block that agent task runs spawn.",
    )
    cli_executable: str = Field(
        default="claude",
        description="The LLM CLI executable saved in the default automates-llm-cli block "
        "(a name looked up on PATH, or a path).",
    )
    default_model: str = Field(
        default="claude-sonnet-4-6",
        description="The model used when neither the run nor the agent names one "
        "(the LLM CLI block and the `automates.agents.llm` facade).",
    )
    agent_models: dict[str, str] = Field(
        default_factory=dict,
        description='Per-agent model preference, as JSON (e.g. {"scout": "claude-haiku-4-5"}).',
    )
    api_base_url: str | None = Field(
        default=None,
        description="Base URL of the Messages API for the LLM facade (unset: the SDK's own, "
        "or ANTHROPIC_BASE_URL).",
    )
    timeout_seconds: float = Field(
        default=120.0, gt=0, description="Per-request timeout of the LLM facade."
    )
    max_retries: int = Field(
        default=2,
        ge=0,
        description="Retries of the LLM facade on 429/5xx/529 and connection errors "
        "(the anthropic SDK's own backoff).",
    )


class TaskRunSettings(Group):
    """What an agent task run gets when it is requested without it (docs/runs.md)."""

    timeout_seconds: int = Field(
        default=1500,
        ge=1,
        le=1740,
        description="A task run's timeout when it is requested without one.",
    )
    max_budget_usd: float = Field(
        default=2.0,
        gt=0,
        description="A task run's per-run budget (--max-budget-usd) when requested without one.",
    )
    stuck_seconds: int = Field(
        default=900,
        ge=1,
        description="The unblock detector retries a task run pending this long without "
        "starting, or running this long without a line of output past its timeout.",
    )


class BrowserSettings(Group):
    """The browser worker and its jobs (docs/browser.md)."""

    pool: str = Field(
        default="residential",
        description="The process work pool whose workers run browser jobs.",
    )
    deployment: str = Field(
        default="browser-job",
        description="Name of the deployment of the `browser-job` flow that runs each job.",
    )
    executable: Path = Field(
        default=Path("/usr/bin/chromium"),
        description="The Chromium that Playwright drives (Playwright's own download is not used).",
    )
    headful: bool = Field(
        default=False,
        description="Run Chromium with a visible window (needs a display: DISPLAY, or Xvfb).",
    )
    proxy: str | None = Field(
        default=None,
        description="Datacenter topology: a socks5://host:port proxy every browser job goes "
        "through; the egress safeguard runs before each launch.",
    )
    egress_echo_url: str | None = Field(
        default=None,
        description="A URL answering the caller's IP address as plain text; the egress safeguard "
        "compares it fetched directly and through the proxy. Required with "
        "AUTOMATES_BROWSER_PROXY.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (`name`, `address`, or either with `:port`) browser jobs may reach "
        "although they are loopback, link-local, private or the layer's own; every other "
        "host must be public (decision 0028). Needed on the enqueuing side and the worker.",
    )
    job_timeout_seconds: int = Field(
        default=120,
        ge=1,
        le=3600,
        description="A job's timeout when it is enqueued without one; the browser is killed "
        "when it passes.",
    )
    lost_grace_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="How long past its own timeout a claimed browser job may stay unreported "
        "before browser-job-watch ends it as lost (its worker kills the browser at the timeout, "
        "then reports).",
    )
    screenshot_dir: Path | None = Field(
        default=None,
        description="Where a job's debug screenshots live while it runs; purged when it ends "
        "(default: the system temporary folder).",
    )
    host: str | None = Field(
        default=None,
        description="The name a browser worker records on the jobs it claims (default: host name).",
    )
    worker_limit: int = Field(
        default=2,
        ge=1,
        description="Browser jobs at once on a residential worker (each is a Python process and "
        "a Chromium: an unbounded worker would start one per queued job and starve the machine).",
    )


class GateSettings(Group):
    """The gate residential workers reach the server through (docs/browser.md)."""

    url: str | None = Field(
        default=None,
        description="The gate a residential worker reaches the server through (its env file; "
        "https://server.example.org:4300).",
    )
    upstream_url: str | None = Field(
        default=None,
        description="The Prefect API the gate forwards allowed calls to (default: the API URL).",
    )
    worker_token: SecretStr | None = Field(
        default=None,
        description="The residential workers' credential, checked by the gate; workers send it "
        "as PREFECT_API_KEY.",
    )
    host: str = Field(default="127.0.0.1", description="Where the gate listens.")
    port: Port = Field(default=4300, description="Where the gate listens.")
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="The largest request body the gate reads (a worker's log batch is at most "
        "1 MB); larger ones are refused 413 unread.",
    )
    rate_limit: str = Field(
        default="100/second",
        description="Requests allowed per caller of the gate (its address, and the worker "
        "credential, shared by all residential workers), as '100/second' or '20/second;600/minute'"
        "; beyond: 429 with Retry-After.",
    )


class WebhookSettings(Group):
    """The webhook that starts runs of automates (docs/scheduling.md#triggers-beyond-time)."""

    host: str = Field(default="127.0.0.1", description="Where the webhook listens.")
    port: Port = Field(default=4400, description="Where the webhook listens.")
    token: SecretStr | None = Field(
        default=None,
        description="One more webhook token (16 characters or more), of the caller 'default'; "
        "callers made with `automates webhook add` have their own, in the store.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="The largest webhook body (the run's parameters) read; larger ones are "
        "refused 413 unread.",
    )
    rate_limit: str = Field(
        default="30/minute",
        description="Webhook requests allowed per caller (its address, and the token), as "
        "'30/minute' or '5/second;100/hour'; beyond: 429 with Retry-After.",
    )


class AlertSettings(Group):
    """The alert deliverer's retries and timeouts (docs/alerts.md)."""

    max_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Sends of one alert to one route before it is dead-lettered (and announced "
        "on the fallback route).",
    )
    retry_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="The wait after a route's first failed send; it doubles after each failure, "
        "up to AUTOMATES_ALERT_RETRY_MAX_SECONDS.",
    )
    retry_max_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="The longest wait between two sends of one alert to one route.",
    )
    send_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="How long one send may take (connect and answer) before it counts as failed.",
    )
    poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often the alert deliverer looks for new alerts when not woken earlier.",
    )


class HeartbeatSettings(Group):
    """The outbound dead-man ping (docs/alerts.md#the-heartbeat-a-watcher-outside-the-layer)."""

    url: SecretStr | None = Field(
        default=None,
        description="An outbound dead-man ping (healthchecks.io, Cronitor): pinged every "
        "AUTOMATES_HEARTBEAT_INTERVAL_SECONDS while the layer is healthy, its /fail variant "
        "with the reason when not; whoever owns the URL hears when the pings stop.",
    )
    interval_seconds: int = Field(
        default=300,
        ge=5,
        le=86400,
        description="How often the heartbeat ping is sent.",
    )
    late_seconds: int = Field(
        default=300,
        ge=30,
        le=86400,
        description="A scheduled run this late and still not started means the layer is not "
        "healthy (the scheduler or the workers are behind).",
    )


class CrashLoopSettings(Group):
    """When a supervised process (or a service automate) counts as crash-looping."""

    restarts: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="A supervised process restarted more than this many times within "
        "AUTOMATES_CRASH_LOOP_WINDOW_SECONDS is in a crash loop: it is stopped and an alert "
        "raised, until `automates up` starts it again.",
    )
    window_seconds: int = Field(
        default=600,
        ge=10,
        le=86400,
        description="The window in which restarts of a supervised process are counted.",
    )


class RetentionSettings(Group):
    """How long the layer keeps what it writes (docs/runbooks/store-retention.md); applied
    daily by the `store-retention` automate, in small batches."""

    execution_journal_days: int = Field(
        default=90,
        ge=1,
        description="Rows of the execution journal (and of agents' tool calls) older than this "
        "are deleted. The journal audit reads the last 35 days.",
    )
    task_run_output_days: int = Field(
        default=30,
        ge=1,
        description="The output lines of agents' task runs ended longer ago are deleted (the "
        "task run itself, its cost and outcome, stay).",
    )
    task_runs_days: int = Field(
        default=365,
        ge=1,
        description="Task runs, and scoped runs, ended longer ago are deleted.",
    )
    browser_payload_days: int = Field(
        default=7,
        ge=1,
        description="The payload and result of browser jobs ended longer ago are purged (the "
        "job's row, its status and times, stays); second-factor codes are deleted after one day.",
    )
    browser_jobs_days: int = Field(
        default=365,
        ge=1,
        description="Browser jobs ended longer ago are deleted.",
    )
    alerts_days: int = Field(
        default=90,
        ge=1,
        description="Alerts raised longer ago, with nothing left to deliver and no open "
        "condition, are deleted with their deliveries.",
    )
    batch_rows: int = Field(
        default=2000,
        ge=10,
        le=100_000,
        description="Rows deleted or purged per transaction: each batch's locks are held only "
        "for its own rows and only while it runs.",
    )
