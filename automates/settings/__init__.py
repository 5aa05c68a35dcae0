"""The one settings root of the project.

Every setting is an `AUTOMATES_*` environment variable (or a line of an env file, see
`automates.envfiles`). Paths default to folders of the checkout so that a fresh clone runs
with no configuration at all; the two URLs switch from the embedded defaults to external
services. The settings of one part of the layer form a group (`automates.settings.groups`):
`AUTOMATES_GATE_PORT` is `settings.gate.port`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from automates.settings.groups import (
    AgentSettings,
    AlertSettings,
    AuditSettings,
    BackupSettings,
    BrowserSettings,
    CrashLoopSettings,
    GateSettings,
    Group,
    HeartbeatSettings,
    LlmSettings,
    RetentionSettings,
    ServerSettings,
    SpendSettings,
    TaskRunSettings,
    WebhookSettings,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Configuration of the automates layer; see docs/configuration.md."""

    # hide_input_in_errors: a refused value may be a secret (a database URL's password).
    # The nested delimiter splits once: AUTOMATES_TASK_RUN_TIMEOUT_SECONDS is
    # task_run.timeout_seconds, the group named by the longest prefix that is a group.
    model_config = SettingsConfigDict(
        env_prefix="AUTOMATES_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        frozen=True,
        extra="ignore",
        hide_input_in_errors=True,
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
        "started by `automates up` (AUTOMATES_SERVER_HOST, AUTOMATES_SERVER_PORT). "
        "PREFECT_API_URL also sets it.",
    )
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
    fast_start: bool = Field(
        default=True,
        description="Process pools' workers start each run in a process forked from a run "
        "launcher that has Prefect and the flows imported, and pick runs up from the server's "
        "event stream (docs/decisions/0050-fast-process-worker.md). false: Prefect's process "
        "worker path, a fresh Python per run, polling every 10 s.",
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
    run_pending_grace_seconds: int = Field(
        default=300,
        ge=30,
        le=86400,
        description="How long a run may stay Pending (a worker took it, nothing started) "
        "before run-watch re-submits it once, and after that ends it Crashed.",
    )
    # At most 4 min: Prefect orders an event after the one it follows only within 5 min of it,
    # and a run's end follows its last beat (docs/decisions/0057-runs-send-their-own-heartbeats.md).
    run_heartbeat_seconds: int = Field(
        default=30,
        ge=1,
        le=240,
        description="How often a run's process sends a heartbeat while its body runs; a run "
        "with no beat for three of these is marked Crashed by the automation `automates: crash "
        "unresponsive runs` (written by `automates sync`, which the workers' runs must share).",
    )
    missed_run_grace_seconds: int = Field(
        default=900,
        ge=0,
        le=86400,
        description="How long after a tick missed-run-check waits for its run to have started "
        "before it reports the tick as missed.",
    )
    # Approvals and the webhook (docs/scheduling.md#approval, #triggers-beyond-time).
    approval_timeout_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        description="How long a run of a before_first_run automate waits for approval, "
        "suspended; then Prefect fails it.",
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

    server: ServerSettings = ServerSettings()
    agent: AgentSettings = AgentSettings()
    llm: LlmSettings = LlmSettings()
    task_run: TaskRunSettings = TaskRunSettings()
    browser: BrowserSettings = BrowserSettings()
    gate: GateSettings = GateSettings()
    webhook: WebhookSettings = WebhookSettings()
    alert: AlertSettings = AlertSettings()
    heartbeat: HeartbeatSettings = HeartbeatSettings()
    crash_loop: CrashLoopSettings = CrashLoopSettings()
    audit: AuditSettings = AuditSettings()
    spend: SpendSettings = SpendSettings()
    backup: BackupSettings = BackupSettings()
    retention: RetentionSettings = RetentionSettings()

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
        host = "127.0.0.1" if self.server.host in ("0.0.0.0", "::") else self.server.host
        return f"http://{host}:{self.server.port}/api"

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

    def as_env(self, *, secrets: bool = True) -> dict[str, str]:
        """The settings given explicitly, as the variables that give them to a child process;
        without `secrets`, none of the credentials typed as secrets (tokens, keys, URLs with
        passwords): for a child that needs none of them.

        The worker hands these to every flow run it starts, so a flow run sees the same
        configuration as the command that started the worker.
        """
        env = {}
        for variable, value in _given(self):
            if value is None:
                continue
            if isinstance(value, SecretStr):
                if not secrets:
                    continue
                value = value.get_secret_value()
            # Complex values travel as JSON, which is how pydantic-settings reads them back.
            text = json.dumps(value) if isinstance(value, dict | list | tuple) else str(value)
            env[variable] = text
        return env


def _given(model: BaseModel, prefix: str = "AUTOMATES_") -> Iterator[tuple[str, object]]:
    """Each setting given explicitly in `model`, by its variable, groups walked into."""
    for name in sorted(model.model_fields_set):
        value = getattr(model, name)
        if isinstance(value, Group):
            yield from _given(value, f"{prefix}{name.upper()}_")
        else:
            yield f"{prefix}{name.upper()}", value


def variables() -> dict[str, str]:
    """Every setting's variable → its place in code (`AUTOMATES_GATE_PORT` → `gate.port`)."""
    found = {}
    for name in Settings.model_fields:
        if name in GROUPS:
            for inner in GROUPS[name].model_fields:
                found[f"AUTOMATES_{name.upper()}_{inner.upper()}"] = f"{name}.{inner}"
        else:
            found[f"AUTOMATES_{name.upper()}"] = name
    return found


def variable(location: tuple[str | int, ...]) -> str:
    """The variable of a setting named by an error's location (("gate", "port") →
    AUTOMATES_GATE_PORT), with the keys of a JSON value after it."""
    parts = [str(part) for part in location]
    taken = 2 if parts and parts[0] in GROUPS and len(parts) > 1 else 1
    name = "AUTOMATES_" + "_".join(parts[:taken]).upper()
    return name + "".join(f" (key {part!r})" for part in parts[taken:])


def not_json(field: str, environ: Mapping[str, str]) -> str:
    """The variable behind a JSON setting pydantic-settings could not parse: it names only the
    field (`llm` for a bad AUTOMATES_LLM_AGENT_MODELS), so the group's JSON variables are tried."""
    if field not in GROUPS:
        return f"AUTOMATES_{field.upper()}"
    for inner, info in GROUPS[field].model_fields.items():
        name = f"AUTOMATES_{field.upper()}_{inner.upper()}"
        if name in environ and getattr(info.annotation, "__origin__", None) in (dict, list):
            try:
                json.loads(environ[name])
            except ValueError:
                return name
    return f"one of AUTOMATES_{field.upper()}_*"


# Each group's field name → its model (`gate` → GateSettings).
GROUPS: dict[str, type[Group]] = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, Group)
}


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
    known = set(variables()) | set(OTHER_VARIABLES)
    problems = []
    for name in sorted(environ):
        if not name.startswith("AUTOMATES_") or name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"{name} is not a setting{hint}")
    return problems
