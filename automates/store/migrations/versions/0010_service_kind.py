"""Service automates: `service` joins the registry's kinds.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

S = "automates"
BEFORE = ("recurring", "oneshot", "tool", "lib", "meta")
AFTER = (*BEFORE, "service")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _replace(kinds: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("automates_kind_check"), "automates", schema=S, type_="check")
    op.create_check_constraint(
        op.f("automates_kind_check"), "automates", f"kind IN ({_in(kinds)})", schema=S
    )


def upgrade() -> None:
    _replace(AFTER)


def downgrade() -> None:
    op.execute(f"DELETE FROM {S}.automates WHERE kind NOT IN ({_in(BEFORE)})")
    _replace(BEFORE)
