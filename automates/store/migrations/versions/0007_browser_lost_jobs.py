"""Browser jobs may end `lost` (claimed, then never reported: their worker died), and `failed`
without a claim (their flow run ended before any worker took them).

Revision ID: 0007
Revises: 0006
"""

from automates.store.migrations import ddl

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ddl.replace_one_of("browser_jobs", "status", ("queued", "running", "done", "failed", "lost"))
    ddl.replace_check(
        "browser_jobs",
        "finished_when_ended",
        "(status IN ('done', 'failed', 'lost')) = (finished_at IS NOT NULL)",
    )
    ddl.replace_check(
        "browser_jobs",
        "started_when_claimed",
        "(started_at IS NULL) = (status = 'queued' OR (status = 'failed' AND attempts = 0))",
    )
