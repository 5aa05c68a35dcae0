"""Alerts: the synced routes, the outbox, and one delivery per alert and route.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "automates"
KINDS = (
    "run_completed",
    "run_findings",
    "run_failed",
    "breaker_opened",
    "held",
    "approval_waiting",
    "missed_tick",
    "browser_job_lost",
    "task_run_over_budget",
    "task_run_killed",
    "reconcile_drift",
    "breaker_closed",
    "released",
    "approval_decided",
    "tick_recovered",
    "reconcile_clean",
    "dead_letter",
    "digest",
)
STATUSES = ("pending", "sending", "sent", "suppressed", "folded", "digested", "dead")


def _ck(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"{table}_{name}_check"))


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _now() -> sa.sql.functions.now:
    return sa.func.now()


def upgrade() -> None:
    op.create_table(
        "alert_routing",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("config", JSONB, nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("id", name=op.f("alert_routing_pkey")),
        _ck("alert_routing", "single_row", "id = 1"),
        schema=S,
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("automate", sa.Text),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("condition", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("flow_run_id", sa.Uuid),
        sa.Column("facts", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("routed_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name=op.f("alerts_pkey")),
        _ck("alerts", "kind", f"kind IN ({_in(KINDS)})"),
        schema=S,
    )
    op.create_index(
        "alerts_unrouted_idx",
        "alerts",
        ["id"],
        schema=S,
        postgresql_where=sa.text("routed_at IS NULL"),
    )
    op.create_index("alerts_condition_idx", "alerts", ["condition", "id"], schema=S)
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("alert_id", sa.BigInteger, nullable=False),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()
        ),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("digest_id", sa.BigInteger),
        sa.Column("dedupe", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.PrimaryKeyConstraint("id", name=op.f("alert_deliveries_pkey")),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            [f"{S}.alerts.id"],
            name=op.f("alert_deliveries_alert_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["digest_id"],
            [f"{S}.alerts.id"],
            name=op.f("alert_deliveries_digest_id_fkey"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("alert_id", "route", name=op.f("alert_deliveries_alert_route_key")),
        _ck("alert_deliveries", "status", f"status IN ({_in(STATUSES)})"),
        _ck("alert_deliveries", "attempts", "attempts >= 0"),
        schema=S,
    )
    op.create_index(
        "alert_deliveries_route_idx", "alert_deliveries", ["route", "status", "id"], schema=S
    )
    op.create_index(
        "alert_deliveries_open_idx",
        "alert_deliveries",
        ["id"],
        schema=S,
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    )


def downgrade() -> None:
    op.drop_table("alert_deliveries", schema=S)
    op.drop_table("alerts", schema=S)
    op.drop_table("alert_routing", schema=S)
