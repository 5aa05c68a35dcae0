"""Every table of the store, in one place.

Tables live in their own PostgreSQL schema (`automates`) so they can share a database with
the Prefect server without ever touching its tables. Enumerations are lowercase text guarded
by CHECK constraints: a row the code would not write cannot be written by hand either.
The migrations in `migrations/versions/` must produce exactly this (tests/store/test_migrations).
"""

from __future__ import annotations

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
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from automates.registry.model import Kind

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


KINDS = ", ".join(f"'{kind.value}'" for kind in Kind)

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
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _slug_check("name"),
    _slug_check("caste"),
    _slug_check("family"),
    _slug_check("work_pool"),
    CheckConstraint(f"kind IN ({KINDS})", name="kind"),
    CheckConstraint("timeout_seconds BETWEEN 1 AND 1800", name="timeout_seconds"),
    CheckConstraint("concurrency_limit IS NULL OR concurrency_limit >= 1", name="concurrency"),
)

automate_agents = Table(
    "automate_agents",
    metadata,
    Column(
        "automate",
        Text,
        ForeignKey("automates.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("agent", Text, primary_key=True),
    _slug_check("agent"),
)

automate_schedules = Table(
    "automate_schedules",
    metadata,
    Column(
        "automate",
        Text,
        ForeignKey("automates.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("slug", Text, primary_key=True),
    Column("cron", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    _slug_check("slug"),
)

OUTCOMES = ("completed", "findings", "skipped", "failed", "timed_out", "crashed", "cancelled")

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
    CheckConstraint("outcome IN (" + ", ".join(f"'{o}'" for o in OUTCOMES) + ")", name="outcome"),
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
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("error_class", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("traceback", Text, nullable=False),
    Column("fix_applied", Text),
    Column("retry_outcome", Text, nullable=False),
    Column("breaker_state", Text),  # the automate's breaker after this failure (from 0003)
    CheckConstraint("retry_outcome IN ('succeeded', 'failed', 'none')", name="retry_outcome"),
    CheckConstraint(
        "breaker_state IS NULL OR breaker_state IN ('closed', 'open', 'half_open')",
        name="breaker_state",
    ),
    CheckConstraint("attempt >= 1", name="attempt"),
    Index("crash_journal_occurred_idx", text("occurred_at DESC")),
)

BREAKER_STATES = ("closed", "open", "half_open")

# One circuit breaker per automate that ever ran under the guard.
breakers = Table(
    "breakers",
    metadata,
    Column("automate", Text, primary_key=True),
    Column("state", Text, nullable=False, server_default=text("'closed'")),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("opened_at", DateTime(timezone=True)),
    Column("cooldown_seconds", Integer, nullable=False, server_default=text("3600")),
    Column("probe_started_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in BREAKER_STATES) + ")", name="state"),
    CheckConstraint("consecutive_failures >= 0", name="consecutive_failures"),
    CheckConstraint("cooldown_seconds >= 1", name="cooldown_seconds"),
    CheckConstraint("(state = 'closed') = (opened_at IS NULL)", name="opened_when_open"),
)
