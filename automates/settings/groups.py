"""The groups of the settings root: one model per part of the layer, as Prefect groups its own.

A group's settings are read from `AUTOMATES_<GROUP>_<NAME>`: `AUTOMATES_GATE_PORT` is
`settings.gate.port`. The variables are the ones the layer always had; the groups only give
each part of the layer its own namespace in code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

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
    payload_key: SecretStr | None = Field(
        default=None,
        description="The Fernet key(s) sealing the secret fields of browser-job payloads in the "
        "store, comma-separated, the newest first (older ones still decrypt, for a rotation); "
        "default: the key file <data folder>/browser-payload.key, generated once (decision 0048).",
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


class BackupSettings(Group):
    """Backups of the layer's database and their restore drills (docs/runbooks/backup.md)."""

    dir: Path | None = Field(
        default=None,
        description="The backup folder: each backup's dump, manifest and drill record "
        "(default: <data folder>/backups; a relative path is taken from the project root).",
    )
    keep_daily: int = Field(
        default=7,
        ge=0,
        le=3650,
        description="Backups kept one a day: the newest of each of this many latest days.",
    )
    keep_weekly: int = Field(
        default=4,
        ge=0,
        le=520,
        description="Backups kept one a week (ISO weeks, UTC): the newest of each of this many "
        "latest weeks.",
    )
    keep_monthly: int = Field(
        default=12,
        ge=0,
        le=1200,
        description="Backups kept one a month (UTC): the newest of each of this many latest "
        "months.",
    )
    max_age_days: float = Field(
        default=8.0,
        gt=0,
        le=366,
        description="The newest backup that passed a restore drill may be this old; older, "
        "backup-verify and backup raise a backup_stale alert.",
    )
    drill_database: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="The scratch database a restore drill creates, fills and drops, on the "
        "live database's server (default: <live database>_restore_drill).",
    )
    restore_jobs: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Parallel jobs of pg_restore in drills and restores (pg_restore --jobs).",
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


class AuditSettings(Group):
    """The thresholds of the nightly journal audit's rules (docs/runbooks/journal-audit.md)."""

    recent_hours: int = Field(
        default=24,
        ge=1,
        le=24 * 28,
        description="The window (hours) in which an automate's failed, timed-out or crashed "
        "runs, and its runs that ended close to their timeout, are counted.",
    )
    failures: int = Field(
        default=3,
        ge=1,
        description="An automate with this many failed, timed-out or crashed runs in the "
        "window is failing repeatedly.",
    )
    repair_days: int = Field(
        default=7, ge=1, le=28, description="The window (days) in which self-repairs are counted."
    )
    repairs: int = Field(
        default=3,
        ge=2,
        description="The same self-repair of one automate this many times in the window: its "
        "cause was never fixed.",
    )
    flapping_days: int = Field(
        default=7,
        ge=1,
        le=28,
        description="The window (days) in which a breaker's openings are counted.",
    )
    flapping_openings: int = Field(
        default=3,
        ge=2,
        description="A breaker that opened this many times in the window (closing in between) "
        "is flapping.",
    )
    drift_factor: float = Field(
        default=2.0,
        gt=1,
        description="Durations drift when the median of the last 7 days' successful runs is "
        "over this many times the median of the 28 days before.",
    )
    drift_min_runs: int = Field(
        default=3,
        ge=1,
        description="The fewest successful runs in each of the two periods for a duration drift "
        "to be judged (fewer: no median worth comparing).",
    )
    drift_min_seconds: float = Field(
        default=1.0,
        ge=0,
        description="A recent median shorter than this is no drift, whatever the ratio "
        "(milliseconds that doubled are noise).",
    )
    timeout_fraction: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="A run of the last AUTOMATES_AUDIT_RECENT_HOURS that ended after this "
        "share of its declared timeout_seconds ended close to its timeout.",
    )
    success_days: int = Field(
        default=3,
        ge=1,
        le=28,
        description="A recurring automate with no completed (or findings) run for this many "
        "days has not succeeded; it is reported once it has runs journaled that long.",
    )
    spend_factor: float = Field(
        default=2.0,
        gt=1,
        description="An agent's spend rises when its daily average over the last 7 days is over "
        "this many times its daily average over the 28 days before.",
    )
    spend_min_usd: float = Field(
        default=1.0,
        ge=0,
        description="An agent's spend over the last 7 days below this is no trend, whatever the "
        "ratio.",
    )


class SpendThresholds(BaseModel):
    """An agent's daily spend thresholds, in dollars."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warn: float = Field(gt=0)
    critical: float = Field(gt=0)

    @model_validator(mode="after")
    def _critical_above_warn(self) -> SpendThresholds:
        if self.critical <= self.warn:
            raise ValueError("the critical threshold must be above the warn threshold")
        return self


class SpendSettings(Group):
    """Daily spend thresholds: an alert when an agent, or the platform, passes one
    (docs/runs.md#spend-alerts)."""

    agent_warn_usd: float = Field(
        default=10.0,
        gt=0,
        description="An agent's spend since midnight UTC (task runs and LLM facade calls) at "
        "which a spend_warning alert is raised, once a day.",
    )
    agent_critical_usd: float = Field(
        default=18.0,
        gt=0,
        description="An agent's spend since midnight UTC at which a spend_critical alert is "
        "raised, once a day.",
    )
    agents_usd: dict[str, SpendThresholds] = Field(
        default_factory=dict,
        description="Per-agent thresholds, as JSON (e.g. "
        '{"scout": {"warn": 2, "critical": 4}}); agents not listed get the two above.',
    )
    platform_warn_usd: float = Field(
        default=50.0,
        gt=0,
        description="The spend of every agent and agentless facade call since midnight UTC at "
        "which a spend_warning alert about the platform is raised, once a day.",
    )
    platform_critical_usd: float = Field(
        default=100.0,
        gt=0,
        description="The same, for a spend_critical alert.",
    )

    @model_validator(mode="after")
    def _critical_above_warn(self) -> SpendSettings:
        for who, warn, critical in (
            ("agent", self.agent_warn_usd, self.agent_critical_usd),
            ("platform", self.platform_warn_usd, self.platform_critical_usd),
        ):
            if critical <= warn:
                raise ValueError(f"the {who} critical threshold must be above its warn threshold")
        return self

    def agent(self, agent: str) -> SpendThresholds:
        """The agent's thresholds: its own, or the defaults."""
        return self.agents_usd.get(agent) or SpendThresholds(
            warn=self.agent_warn_usd, critical=self.agent_critical_usd
        )

    @property
    def platform(self) -> SpendThresholds:
        return SpendThresholds(warn=self.platform_warn_usd, critical=self.platform_critical_usd)


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
        description="Task runs, and scoped runs, ended longer ago are deleted, and the record "
        "of LLM façade calls made longer ago.",
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
