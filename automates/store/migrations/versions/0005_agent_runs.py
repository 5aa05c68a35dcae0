"""Perimeters, runs, agent task runs and their streamed output.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from automates.store.migrations import ddl

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ENDED = ("completed", "failed", "timed_out", "over_budget", "cancelled")
TASK_STATUSES = ("pending", "running", *ENDED)


def upgrade() -> None:
    ddl.create_table(
        "perimeters",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("machine", sa.Text),
        sa.Column("client", sa.Text),
        sa.Column("contact", sa.Text),
        sa.Column("mailbox", sa.Text),
        sa.Column("workdir", sa.Text, nullable=False),
        *ddl.created_and_updated(),
        *ddl.slug_pkey("perimeters", "id"),
        ddl.one_of("perimeters", "kind", ("platform", "tenant")),
        ddl.check("perimeters", "platform_is_platform", "(kind = 'platform') = (id = 'platform')"),
        ddl.check("perimeters", "workdir_absolute", "workdir LIKE '/%'"),
    )
    ddl.create_table(
        "runs",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("perimeter", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        ddl.defaulted("status", sa.Text, "'running'"),
        sa.Column("flow_run_id", sa.Uuid),
        ddl.timestamp_now("created_at"),
        ddl.timestamp_now("started_at"),
        ddl.timestamp("ended_at"),
        sa.Column("message", sa.Text),
        ddl.pkey("runs", "id"),
        ddl.foreign_key("runs", "perimeter", "perimeters.id"),
        ddl.one_of("runs", "trigger", ("email", "chat", "cron", "manual")),
        ddl.one_of("runs", "status", ("running", "completed", "failed")),
        ddl.check("runs", "ended_when_done", "(status = 'running') = (ended_at IS NULL)"),
    )
    ddl.create_index("runs_created_idx", "runs", [sa.text("created_at DESC")])
    ddl.create_table(
        "task_runs",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("run_id", sa.Uuid),
        sa.Column("codename", sa.Text, nullable=False),
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("perimeter", sa.Text, nullable=False),
        sa.Column("exit_criteria", sa.Text),
        sa.Column("model", sa.Text),
        ddl.defaulted("dry_run", sa.Boolean, "false"),
        sa.Column("timeout_seconds", sa.Integer, nullable=False),
        sa.Column("max_budget_usd", sa.Numeric(12, 6)),
        ddl.defaulted("status", sa.Text, "'pending'"),
        ddl.defaulted("attempts", sa.Integer, "0"),
        sa.Column("flow_run_id", sa.Uuid),
        sa.Column("command", JSONB),
        sa.Column("pid", sa.Integer),
        sa.Column("exit_code", sa.Integer),
        ddl.defaulted("input_tokens", sa.BigInteger, "0"),
        ddl.defaulted("output_tokens", sa.BigInteger, "0"),
        ddl.defaulted("cost_usd", sa.Numeric(12, 6), "0"),
        sa.Column("terminal_reason", sa.Text),
        sa.Column("error", sa.Text),
        ddl.timestamp_now("requested_at"),
        ddl.timestamp("started_at"),
        ddl.timestamp("heartbeat_at"),
        ddl.timestamp("ended_at"),
        ddl.pkey("task_runs", "id"),
        ddl.foreign_key("task_runs", "run_id", "runs.id"),
        ddl.foreign_key("task_runs", "perimeter", "perimeters.id"),
        ddl.slug("task_runs", "codename"),
        ddl.slug("task_runs", "agent"),
        ddl.one_of("task_runs", "status", TASK_STATUSES),
        ddl.check("task_runs", "attempts", "attempts BETWEEN 0 AND 4"),
        ddl.check("task_runs", "timeout_seconds", "timeout_seconds BETWEEN 1 AND 86400"),
        ddl.check("task_runs", "max_budget_usd", "max_budget_usd IS NULL OR max_budget_usd > 0"),
        ddl.check("task_runs", "cost_usd", "cost_usd >= 0"),
        ddl.check(
            "task_runs",
            "ended_when_done",
            f"(status IN ({ddl.quoted(ENDED)})) = (ended_at IS NOT NULL)",
        ),
    )
    ddl.create_index("task_runs_status_idx", "task_runs", ["status", "requested_at"])
    ddl.create_index("task_runs_agent_idx", "task_runs", ["agent", "ended_at"])
    ddl.create_table(
        "task_run_output",
        ddl.identity_id(always=True),
        sa.Column("task_run_id", sa.Uuid, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        ddl.timestamp_now("at"),
        ddl.pkey("task_run_output", "id"),
        ddl.foreign_key("task_run_output", "task_run_id", "task_runs.id", ondelete="CASCADE"),
    )
    ddl.create_index("task_run_output_task_run_id_idx", "task_run_output", ["task_run_id", "id"])
