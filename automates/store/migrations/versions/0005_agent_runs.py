"""Perimeters, runs, agent task runs and their streamed output.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SLUG = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
S = "automates"
ENDED = "'completed', 'failed', 'timed_out', 'over_budget', 'cancelled'"
TASK_STATUSES = f"'pending', 'running', {ENDED}"


def _ck(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"{table}_{name}_check"))


def _slug(table: str, column: str) -> sa.CheckConstraint:
    return _ck(table, f"{column}_slug", f"{column} ~ '{SLUG}'")


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True))
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "perimeters",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("machine", sa.Text),
        sa.Column("client", sa.Text),
        sa.Column("contact", sa.Text),
        sa.Column("mailbox", sa.Text),
        sa.Column("workdir", sa.Text, nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("perimeters_pkey")),
        _slug("perimeters", "id"),
        _ck("perimeters", "kind", "kind IN ('platform', 'tenant')"),
        _ck("perimeters", "platform_is_platform", "(kind = 'platform') = (id = 'platform')"),
        _ck("perimeters", "workdir_absolute", "workdir LIKE '/%'"),
        schema=S,
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("perimeter", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'running'")),
        sa.Column("flow_run_id", sa.Uuid),
        _timestamp("created_at"),
        _timestamp("started_at"),
        _timestamp("ended_at", nullable=True),
        sa.Column("message", sa.Text),
        sa.PrimaryKeyConstraint("id", name=op.f("runs_pkey")),
        sa.ForeignKeyConstraint(
            ["perimeter"], [f"{S}.perimeters.id"], name=op.f("runs_perimeter_fkey")
        ),
        _ck("runs", "trigger", "trigger IN ('email', 'chat', 'cron', 'manual')"),
        _ck("runs", "status", "status IN ('running', 'completed', 'failed')"),
        _ck("runs", "ended_when_done", "(status = 'running') = (ended_at IS NULL)"),
        schema=S,
    )
    op.create_index("runs_created_idx", "runs", [sa.text("created_at DESC")], schema=S)
    op.create_table(
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
        sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("timeout_seconds", sa.Integer, nullable=False),
        sa.Column("max_budget_usd", sa.Numeric(12, 6)),
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'pending'")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("flow_run_id", sa.Uuid),
        sa.Column("command", JSONB),
        sa.Column("pid", sa.Integer),
        sa.Column("exit_code", sa.Integer),
        sa.Column("input_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("output_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("cost_usd", sa.Numeric(12, 6), nullable=False, server_default=sa.text("0")),
        sa.Column("terminal_reason", sa.Text),
        sa.Column("error", sa.Text),
        _timestamp("requested_at"),
        _timestamp("started_at", nullable=True),
        _timestamp("heartbeat_at", nullable=True),
        _timestamp("ended_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("task_runs_pkey")),
        sa.ForeignKeyConstraint(["run_id"], [f"{S}.runs.id"], name=op.f("task_runs_run_id_fkey")),
        sa.ForeignKeyConstraint(
            ["perimeter"], [f"{S}.perimeters.id"], name=op.f("task_runs_perimeter_fkey")
        ),
        _slug("task_runs", "codename"),
        _slug("task_runs", "agent"),
        _ck("task_runs", "status", f"status IN ({TASK_STATUSES})"),
        _ck("task_runs", "attempts", "attempts BETWEEN 0 AND 4"),
        _ck("task_runs", "timeout_seconds", "timeout_seconds BETWEEN 1 AND 86400"),
        _ck("task_runs", "max_budget_usd", "max_budget_usd IS NULL OR max_budget_usd > 0"),
        _ck("task_runs", "cost_usd", "cost_usd >= 0"),
        _ck("task_runs", "ended_when_done", f"(status IN ({ENDED})) = (ended_at IS NOT NULL)"),
        schema=S,
    )
    op.create_index("task_runs_status_idx", "task_runs", ["status", "requested_at"], schema=S)
    op.create_index("task_runs_agent_idx", "task_runs", ["agent", "ended_at"], schema=S)
    op.create_table(
        "task_run_output",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("task_run_id", sa.Uuid, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        _timestamp("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("task_run_output_pkey")),
        sa.ForeignKeyConstraint(
            ["task_run_id"],
            [f"{S}.task_runs.id"],
            name=op.f("task_run_output_task_run_id_fkey"),
            ondelete="CASCADE",
        ),
        schema=S,
    )
    op.create_index(
        "task_run_output_task_run_id_idx", "task_run_output", ["task_run_id", "id"], schema=S
    )
