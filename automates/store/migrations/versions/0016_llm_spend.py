"""The LLM facade's calls in their agent's budget, and the alerts of spend and of the journal
audit.

`llm_calls`: one row per facade call, reserved at its worst-case cost before the call and
settled at its real cost after, read beside the task runs wherever an agent's spend is
(decision 0046). The outbox's kind list gains a refused facade call, the two daily spend
thresholds and a finding of the journal audit.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa

from automates.store.migrations import ddl, value_lists

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BEFORE = value_lists.ALERT_KINDS_0015
AFTER = value_lists.ALERT_KINDS_0016


def upgrade() -> None:
    ddl.create_table(
        "llm_calls",
        ddl.identity_id(always=True),
        sa.Column("agent", sa.Text),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("automate", sa.Text),
        sa.Column("flow_run_id", sa.Uuid),
        ddl.defaulted("status", sa.Text, "'reserved'"),
        sa.Column("reserved_usd", sa.Numeric(12, 6), nullable=False),
        ddl.defaulted("cost_usd", sa.Numeric(12, 6), "0"),
        ddl.defaulted("input_tokens", sa.BigInteger, "0"),
        ddl.defaulted("output_tokens", sa.BigInteger, "0"),
        ddl.timestamp_now("started_at"),
        ddl.timestamp("ended_at"),
        ddl.pkey("llm_calls", "id"),
        ddl.slug("llm_calls", "agent"),
        ddl.one_of("llm_calls", "status", ("reserved", "spent", "failed")),
        ddl.check("llm_calls", "reserved_usd", "reserved_usd >= 0"),
        ddl.check("llm_calls", "cost_usd", "cost_usd >= 0"),
        ddl.check("llm_calls", "ended_when_settled", "(status = 'reserved') = (ended_at IS NULL)"),
    )
    ddl.create_index("llm_calls_agent_idx", "llm_calls", ["agent", "started_at"])
    ddl.create_index("llm_calls_started_at_idx", "llm_calls", ["started_at"])
    ddl.replace_one_of("alerts", "kind", AFTER)


def downgrade() -> None:
    ddl.narrow_one_of("alerts", "kind", BEFORE)
    ddl.drop_table("llm_calls")
