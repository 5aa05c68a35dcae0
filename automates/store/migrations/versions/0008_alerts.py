"""Alerts: the synced routes, the outbox, and one delivery per alert and route.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from automates.store.migrations import ddl, value_lists

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATUSES = ("pending", "sending", "sent", "suppressed", "folded", "digested", "dead")


def upgrade() -> None:
    ddl.create_table(
        "alert_routing",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("config", JSONB, nullable=False),
        ddl.timestamp_now("synced_at"),
        ddl.pkey("alert_routing", "id"),
        ddl.check("alert_routing", "single_row", "id = 1"),
    )
    ddl.create_table(
        "alerts",
        ddl.identity_id(always=True),
        ddl.timestamp_now("raised_at"),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("automate", sa.Text),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("condition", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("flow_run_id", sa.Uuid),
        ddl.jsonb("facts", "{}"),
        ddl.timestamp("routed_at"),
        ddl.timestamp("resolved_at"),
        ddl.pkey("alerts", "id"),
        ddl.one_of("alerts", "kind", value_lists.ALERT_KINDS_0008),
    )
    ddl.create_index("alerts_unrouted_idx", "alerts", ["id"], where="routed_at IS NULL")
    ddl.create_index("alerts_condition_idx", "alerts", ["condition", "id"])
    ddl.create_table(
        "alert_deliveries",
        ddl.identity_id(always=True),
        sa.Column("alert_id", sa.BigInteger, nullable=False),
        sa.Column("route", sa.Text, nullable=False),
        ddl.defaulted("status", sa.Text, "'pending'"),
        sa.Column("reason", sa.Text),
        # Its default was first written as a string, so the DDL says DEFAULT '0' (still 0).
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        ddl.timestamp_now("next_attempt_at"),
        ddl.timestamp("claimed_at"),
        ddl.timestamp("finished_at"),
        sa.Column("digest_id", sa.BigInteger),
        ddl.defaulted("dedupe", sa.Boolean, "true"),
        ddl.pkey("alert_deliveries", "id"),
        ddl.foreign_key("alert_deliveries", "alert_id", "alerts.id", ondelete="CASCADE"),
        ddl.foreign_key("alert_deliveries", "digest_id", "alerts.id", ondelete="SET NULL"),
        sa.UniqueConstraint("alert_id", "route", name=op.f("alert_deliveries_alert_route_key")),
        ddl.one_of("alert_deliveries", "status", STATUSES),
        ddl.check("alert_deliveries", "attempts", "attempts >= 0"),
    )
    ddl.create_index("alert_deliveries_route_idx", "alert_deliveries", ["route", "status", "id"])
    ddl.create_index(
        "alert_deliveries_open_idx",
        "alert_deliveries",
        ["id"],
        where="status IN ('pending', 'sending')",
    )


def downgrade() -> None:
    ddl.drop_table("alert_deliveries")
    ddl.drop_table("alerts")
    ddl.drop_table("alert_routing")
