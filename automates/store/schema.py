"""Every table of the store, in one place.

Tables live in their own PostgreSQL schema (`automates`) so they can share a database with
the Prefect server without ever touching its tables. Enumerations are lowercase text guarded
by CHECK constraints: a row the code would not write cannot be written by hand either.
The migrations in `migrations/versions/` must produce exactly this (tests/store/test_migrations).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from automates.registry.alert_kinds import AlertKind
from automates.registry.model import Kind
from automates.scheduling.approval import Approval
from automates.states import (
    AlertDeliveryStatus,
    BreakerState,
    BrowserJobStatus,
    HoldReason,
    LlmCallStatus,
    PerimeterKind,
    RetryOutcome,
    RunOutcome,
    RunStatus,
    RunTrigger,
    TaskRunStatus,
    ToolCallOutcome,
)

SCHEMA = "automates"
SLUG_PATTERN = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"

metadata = MetaData(
    schema=SCHEMA,
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "fk": "%(table_name)s_%(column_0_name)s_fkey",
        "ck": "%(table_name)s_%(constraint_name)s_check",
        "ix": "%(table_name)s_%(column_0_name)s_idx",
        "uq": "%(table_name)s_%(column_0_name)s_key",
    },
)


def _slug_check(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} ~ '{SLUG_PATTERN}'", name=f"{column}_slug")


def one_of(column: str, values: Iterable[StrEnum]) -> str:
    """`column IN ('a', 'b')`, in the enumeration's order: PostgreSQL keeps the list as written
    (`= ANY (ARRAY[...])`), so the order is part of the constraint the migrations must match."""
    quoted = ", ".join(f"'{value.value}'" for value in values)
    return f"{column} IN ({quoted})"


def _in(column: str, values: Iterable[StrEnum], name: str | None = None) -> CheckConstraint:
    return CheckConstraint(one_of(column, values), name=name or column)


def _moment(name: str) -> Column[Any]:
    """A timestamp column that the database fills with the time of the insert."""
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


def _declared_automate() -> Column[Any]:
    """The automate a row belongs to, part of its key: the row goes when the automate does."""
    return Column(
        "automate", Text, ForeignKey("automates.name", ondelete="CASCADE"), primary_key=True
    )


automates = Table(
    "automates",
    metadata,
    Column("name", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("caste", Text, nullable=False),
    Column("family", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("runbook", Text),
    Column("entrypoint", Text, nullable=False),
    Column("timeout_seconds", Integer, nullable=False),
    Column("concurrency_limit", Integer),
    Column("work_pool", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    # The whole validated declaration, and its digest: a no-change sync compares digests only.
    Column("declaration", JSONB, nullable=False),
    Column("digest", Text, nullable=False),
    _moment("created_at"),
    _moment("updated_at"),
    _slug_check("name"),
    _slug_check("caste"),
    _slug_check("family"),
    _slug_check("work_pool"),
    _in("kind", Kind),
    CheckConstraint("timeout_seconds BETWEEN 1 AND 1800", name="timeout_seconds"),
    CheckConstraint("concurrency_limit IS NULL OR concurrency_limit >= 1", name="concurrency"),
)

automate_agents = Table(
    "automate_agents",
    metadata,
    _declared_automate(),
    Column("agent", Text, primary_key=True),
    _slug_check("agent"),
)

automate_schedules = Table(
    "automate_schedules",
    metadata,
    _declared_automate(),
    Column("slug", Text, primary_key=True),
    Column("cron", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    _slug_check("slug"),
)

# The verbose execution journal: one row per guarded run, written when the run ends.
execution_journal = Table(
    "execution_journal",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("automate", Text, nullable=False),
    Column("flow_run_id", Uuid, nullable=False, unique=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("message", Text),
    Column("attempts", Integer, nullable=False),
    Column("exit_code", Integer),
    Column("steps", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("counters", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("warnings", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("errors", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("context", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("principal", Text),  # who asked for the run (automates/principal.py)
    _in("outcome", RunOutcome),
    CheckConstraint("attempts >= 1", name="attempts"),
    CheckConstraint("finished_at >= started_at", name="finished_after_start"),
    Index("execution_journal_automate_finished_idx", "automate", text("finished_at DESC")),
)

# The crash journal: one row per failed attempt, append-only (a trigger refuses UPDATE, DELETE
# and TRUNCATE).
crash_journal = Table(
    "crash_journal",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("automate", Text, nullable=False),
    Column("flow_run_id", Uuid, nullable=False),
    Column("attempt", Integer, nullable=False),
    _moment("occurred_at"),
    Column("error_class", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("traceback", Text, nullable=False),
    Column("fix_applied", Text),
    Column("retry_outcome", Text, nullable=False),
    Column("breaker_state", Text),  # the automate's breaker after this failure (from 0003)
    _in("retry_outcome", RetryOutcome),
    CheckConstraint(
        f"breaker_state IS NULL OR {one_of('breaker_state', BreakerState)}", name="breaker_state"
    ),
    CheckConstraint("attempt >= 1", name="attempt"),
    Index("crash_journal_occurred_idx", text("occurred_at DESC")),
)

# One circuit breaker per automate that ever ran under the guard.
breakers = Table(
    "breakers",
    metadata,
    Column("automate", Text, primary_key=True),
    Column("state", Text, nullable=False, server_default=text(f"'{BreakerState.CLOSED}'")),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("opened_at", DateTime(timezone=True)),
    Column("cooldown_seconds", Integer, nullable=False, server_default=text("3600")),
    Column("probe_started_at", DateTime(timezone=True)),
    _moment("updated_at"),
    _in("state", BreakerState),
    CheckConstraint("consecutive_failures >= 0", name="consecutive_failures"),
    CheckConstraint("cooldown_seconds >= 1", name="cooldown_seconds"),
    CheckConstraint(
        f"(state = '{BreakerState.CLOSED}') = (opened_at IS NULL)", name="opened_when_open"
    ),
)

BROWSER_JOB_ENDED = tuple(status for status in BrowserJobStatus if status.ended)
BROWSER_KIND_PATTERN = "^[a-z][a-z0-9_]{0,39}$"
MAILBOX_PATTERN = "^[a-z0-9][a-z0-9._@+-]{0,127}$"

# One row per browser job (docs/browser.md): enqueued on the server, claimed atomically by one
# residential worker, finished through the gate. The result may hold personal data.
browser_jobs = Table(
    "browser_jobs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default=text(f"'{BrowserJobStatus.QUEUED}'")),
    Column("timeout_seconds", Integer, nullable=False),
    Column("flow_run_id", Uuid),
    Column("host", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _moment("created_at"),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("error", Text),
    Column("result", JSONB),
    Column("counters", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    CheckConstraint(f"kind ~ '{BROWSER_KIND_PATTERN}'", name="kind"),
    _in("status", BrowserJobStatus),
    CheckConstraint("timeout_seconds BETWEEN 1 AND 3600", name="timeout_seconds"),
    CheckConstraint("attempts >= 0", name="attempts"),
    # Not started: queued, or failed before any worker claimed it (its flow run ended first).
    CheckConstraint(
        f"(started_at IS NULL) = (status = '{BrowserJobStatus.QUEUED}'"
        f" OR (status = '{BrowserJobStatus.FAILED}' AND attempts = 0))",
        name="started_when_claimed",
    ),
    CheckConstraint(
        f"({one_of('status', BROWSER_JOB_ENDED)}) = (finished_at IS NOT NULL)",
        name="finished_when_ended",
    ),
    CheckConstraint(
        f"result IS NULL OR status = '{BrowserJobStatus.DONE}'", name="result_when_done"
    ),
    Index("browser_jobs_status_idx", "status", "created_at"),
)

# The server side's mailbox of second-factor codes: a mail fetcher (or, in tests, the test
# portal) writes a row; the gate hands the newest unused one to the job that asks, once.
browser_mailbox = Table(
    "browser_mailbox",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("mailbox", Text, nullable=False),
    Column("code", Text, nullable=False),
    _moment("received_at"),
    Column("consumed_by", Uuid),
    Column("consumed_at", DateTime(timezone=True)),
    CheckConstraint(f"mailbox ~ '{MAILBOX_PATTERN}'", name="mailbox"),
    CheckConstraint("(consumed_by IS NULL) = (consumed_at IS NULL)", name="consumed_together"),
    Index("browser_mailbox_mailbox_idx", "mailbox", text("received_at DESC")),
)

# --- Runs and agent task runs (docs/runs.md) -------------------------------------------------

TASK_RUN_ENDED = tuple(status for status in TaskRunStatus if status.ended)


# A perimeter scopes a run: the platform itself or one tenant, with the context a run loads.
perimeters = Table(
    "perimeters",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("machine", Text),
    Column("client", Text),
    Column("contact", Text),
    Column("mailbox", Text),
    Column("workdir", Text, nullable=False),  # the working tree a `code` task run may edit
    _moment("created_at"),
    _moment("updated_at"),
    _slug_check("id"),
    _in("kind", PerimeterKind),
    CheckConstraint(
        f"(kind = '{PerimeterKind.PLATFORM}') = (id = 'platform')", name="platform_is_platform"
    ),
    CheckConstraint("workdir LIKE '/%'", name="workdir_absolute"),
)

# A run: one scoped execution over a perimeter; it may spawn agent task runs.
runs = Table(
    "runs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("perimeter", Text, ForeignKey("perimeters.id"), nullable=False),
    Column("source", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text(f"'{RunStatus.RUNNING}'")),
    Column("flow_run_id", Uuid),
    _moment("created_at"),
    _moment("started_at"),
    Column("ended_at", DateTime(timezone=True)),
    Column("message", Text),
    _in("trigger", RunTrigger),
    _in("status", RunStatus),
    CheckConstraint(
        f"(status = '{RunStatus.RUNNING}') = (ended_at IS NULL)", name="ended_when_done"
    ),
    Index("runs_created_idx", text("created_at DESC")),
)

# An agent task run: the execution unit delegated to an agent, one LLM CLI process per attempt.
task_runs = Table(
    "task_runs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, ForeignKey("runs.id")),
    Column("codename", Text, nullable=False),
    Column("agent", Text, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("template", Text, nullable=False),
    Column("perimeter", Text, ForeignKey("perimeters.id"), nullable=False),
    Column("exit_criteria", Text),
    Column("model", Text),
    Column("dry_run", Boolean, nullable=False, server_default=text("false")),
    Column("timeout_seconds", Integer, nullable=False),
    Column("max_budget_usd", Numeric(12, 6)),
    Column("status", Text, nullable=False, server_default=text(f"'{TaskRunStatus.PENDING}'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("flow_run_id", Uuid),
    Column("command", JSONB),  # the exact argv run (or, for a dry run, that would have run)
    Column("pid", Integer),
    Column("exit_code", Integer),
    Column("input_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("output_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cost_usd", Numeric(12, 6), nullable=False, server_default=text("0")),
    Column("terminal_reason", Text),
    Column("error", Text),
    _moment("requested_at"),
    Column("started_at", DateTime(timezone=True)),  # the CLI process started
    Column("heartbeat_at", DateTime(timezone=True)),  # the last line of output
    Column("ended_at", DateTime(timezone=True)),
    _slug_check("codename"),
    _slug_check("agent"),
    _in("status", TaskRunStatus),
    CheckConstraint("attempts BETWEEN 0 AND 4", name="attempts"),
    CheckConstraint("timeout_seconds BETWEEN 1 AND 86400", name="timeout_seconds"),
    CheckConstraint("max_budget_usd IS NULL OR max_budget_usd > 0", name="max_budget_usd"),
    CheckConstraint("cost_usd >= 0", name="cost_usd"),
    CheckConstraint(
        f"({one_of('status', TASK_RUN_ENDED)}) = (ended_at IS NOT NULL)", name="ended_when_done"
    ),
    Index("task_runs_status_idx", "status", "requested_at"),
    Index("task_runs_agent_idx", "agent", "ended_at"),
)

# Every line the CLI printed, appended as it arrives: what `automates task-run tail` follows.
task_run_output = Table(
    "task_run_output",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("task_run_id", Uuid, ForeignKey("task_runs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("line", Text, nullable=False),
    _moment("at"),
    Index("task_run_output_task_run_id_idx", "task_run_id", "id"),
)

# An automate held for operator review (its schedules stay paused, as under an open breaker)
# until `automates release NAME`. At most one open hold per automate and reason.
holds = Table(
    "holds",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("automate", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    _moment("held_at"),
    Column("released_at", DateTime(timezone=True)),
    Column("released_by", Text),
    Column("held_by", Text),  # who paused it; NULL for a hold the guard opened (from 0017)
    _in("reason", HoldReason),
    CheckConstraint("(released_at IS NULL) = (released_by IS NULL)", name="released_by_whom"),
    Index(
        "holds_open_idx",
        "automate",
        "reason",
        unique=True,
        postgresql_where=text("released_at IS NULL"),
    ),
)

# The approval policies that wait for someone (`none` is never recorded).
APPROVAL_STAGES = tuple(policy for policy in Approval if policy is not Approval.NONE)

# Who approved which version (digest) of an automate's declaration, and when.
approvals = Table(
    "approvals",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("automate", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("approved_by", Text, nullable=False),
    _moment("approved_at"),
    Column("flow_run_id", Uuid),  # the waiting run it resumed (before_first_run)
    Column("note", Text),
    _in("stage", APPROVAL_STAGES),
    Index("approvals_automate_idx", "automate", "digest", "stage", unique=True),
)

# Alerts (docs/alerts.md): the routes file as last synced, the outbox of alerts, and one
# delivery row per alert and route, whose status tells what became of it and why.
alert_routing = Table(
    "alert_routing",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("config", JSONB, nullable=False),  # secret references, never secrets
    _moment("synced_at"),
    CheckConstraint("id = 1", name="single_row"),
)

ALERT_KINDS = tuple(AlertKind)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    _moment("raised_at"),
    Column("kind", Text, nullable=False),
    Column("automate", Text),
    # What makes two alerts "the same" for de-duplication: no time, no id.
    Column("signature", Text, nullable=False),
    Column("condition", Text),  # the condition it opens or resolves (kinds.condition)
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("flow_run_id", Uuid),
    Column("facts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("routed_at", DateTime(timezone=True)),  # fanned out into deliveries
    Column("resolved_at", DateTime(timezone=True)),  # a condition's end was raised
    _in("kind", ALERT_KINDS),
    Index("alerts_unrouted_idx", "id", postgresql_where=text("routed_at IS NULL")),
    Index("alerts_condition_idx", "condition", "id"),
)

DELIVERY_STATUSES = tuple(AlertDeliveryStatus)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("route", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=AlertDeliveryStatus.PENDING.value),
    Column("reason", Text),  # why suppressed, folded or dead; the last failure while pending
    Column("attempts", Integer, nullable=False, server_default="0"),
    _moment("next_attempt_at"),
    Column("claimed_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("digest_id", BigInteger, ForeignKey("alerts.id", ondelete="SET NULL")),
    # False: never suppressed as a duplicate (resolutions, digests, `delivery.unchanged`).
    Column("dedupe", Boolean, nullable=False, server_default=text("true")),
    UniqueConstraint("alert_id", "route", name="alert_deliveries_alert_route_key"),
    _in("status", AlertDeliveryStatus),
    CheckConstraint("attempts >= 0", name="attempts"),
    Index("alert_deliveries_route_idx", "route", "status", "id"),
    Index(
        "alert_deliveries_open_idx",
        "id",
        postgresql_where=text(
            one_of("status", (AlertDeliveryStatus.PENDING, AlertDeliveryStatus.SENDING))
        ),
    ),
)


# Agents' routines (docs/agents.md, "Routines"): declarations an agent made through the layer's
# MCP tools, kept here instead of the operator's registry file; sync deploys them beside the
# file's. One row a routine: its owner and its validated spec, from which its declaration (an
# `origin: agent` automate) is derived. And the journal of every tool call an agent made,
# allowed or refused.
agent_routines = Table(
    "agent_routines",
    metadata,
    Column("name", Text, primary_key=True),
    Column("agent", Text, nullable=False),
    Column("spec", JSONB, nullable=False),  # what the agent asked for (RoutineSpec)
    _moment("created_at"),
    _moment("updated_at"),
    _slug_check("name"),
    _slug_check("agent"),
    Index("agent_routines_agent_idx", "agent"),
)

agent_tool_calls = Table(
    "agent_tool_calls",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    _moment("called_at"),
    Column("agent", Text, nullable=False),
    Column("tool", Text, nullable=False),
    Column("arguments", JSONB, nullable=False, server_default=text("'{}'::jsonb")),  # no secrets
    Column("outcome", Text, nullable=False),
    Column("detail", Text),  # why refused or failed; what changed
    _in("outcome", ToolCallOutcome),
    Index("agent_tool_calls_agent_idx", "agent", "id"),
)

# Agents' heartbeats (docs/agents.md, "Heartbeats"): one row an agent, its configuration as the
# operator gave it (`automates heartbeat enable`), from which its declaration is derived.
agent_heartbeats = Table(
    "agent_heartbeats",
    metadata,
    Column("agent", Text, primary_key=True),
    Column("config", JSONB, nullable=False),  # a registry.heartbeat.Heartbeat
    _moment("created_at"),
    _moment("updated_at"),
    _slug_check("agent"),
)

# The webhook's callers (docs/scheduling.md, "Triggers beyond time"): one named token each, kept
# as its SHA-256 only (a random 256-bit token needs no slow hash), revoked by stamping the row.
webhook_callers = Table(
    "webhook_callers",
    metadata,
    Column("name", Text, primary_key=True),
    Column("token_sha256", Text, nullable=False),
    Column("automates", JSONB),  # the automates it may start; NULL: every webhook automate
    Column("created_by", Text, nullable=False),
    _moment("created_at"),
    Column("rotated_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", Text),
    _slug_check("name"),
    Index("webhook_callers_token_idx", "token_sha256", unique=True),
)

# Calls of the LLM facade (automates/agents/llm.py), in their agent's rolling budget beside its
# task runs: reserved at their worst-case cost before the call, settled at their real cost after
# (decision 0046). A reservation whose process died stays held until it leaves the window.
llm_calls = Table(
    "llm_calls",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("agent", Text),  # None: a call of the platform's own, in no agent's budget
    Column("model", Text, nullable=False),
    Column("automate", Text),  # the guarded run it was made in, if any
    Column("flow_run_id", Uuid),
    Column("status", Text, nullable=False, server_default=text(f"'{LlmCallStatus.RESERVED}'")),
    Column("reserved_usd", Numeric(12, 6), nullable=False),  # its worst case
    Column("cost_usd", Numeric(12, 6), nullable=False, server_default=text("0")),
    Column("input_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("output_tokens", BigInteger, nullable=False, server_default=text("0")),
    _moment("started_at"),
    Column("ended_at", DateTime(timezone=True)),
    _slug_check("agent"),
    _in("status", LlmCallStatus),
    CheckConstraint("reserved_usd >= 0", name="reserved_usd"),
    CheckConstraint("cost_usd >= 0", name="cost_usd"),
    CheckConstraint(
        f"(status = '{LlmCallStatus.RESERVED}') = (ended_at IS NULL)", name="ended_when_settled"
    ),
    Index("llm_calls_agent_idx", "agent", "started_at"),
    Index("llm_calls_started_at_idx", "started_at"),
)
