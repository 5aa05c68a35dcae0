"""Browser jobs may end `lost` (claimed, then never reported: their worker died), and `failed`
without a claim (their flow run ended before any worker took them).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

S = "automates"
T = "browser_jobs"
CHECKS = {
    "browser_jobs_status_check": "status IN ('queued', 'running', 'done', 'failed', 'lost')",
    "browser_jobs_finished_when_ended_check": (
        "(status IN ('done', 'failed', 'lost')) = (finished_at IS NOT NULL)"
    ),
    "browser_jobs_started_when_claimed_check": (
        "(started_at IS NULL) = (status = 'queued' OR (status = 'failed' AND attempts = 0))"
    ),
}


def upgrade() -> None:
    for name, condition in CHECKS.items():
        op.drop_constraint(op.f(name), T, schema=S, type_="check")
        op.create_check_constraint(op.f(name), T, condition, schema=S)
