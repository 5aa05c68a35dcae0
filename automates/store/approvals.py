"""Statements on approvals: who approved which version (digest) of a declaration, and when."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert

from automates.scheduling import approval as policy
from automates.store.rows import StoredRow
from automates.store.schema import approvals


@dataclass(frozen=True)
class Approval(StoredRow):
    """A row of `approvals`: who approved one version (digest) of an automate's declaration,
    at which stage of its approval policy, and when."""

    id: int
    automate: str
    digest: str
    stage: policy.Approval  # before_enable or before_first_run (`none` waits for nobody)
    approved_by: str
    approved_at: datetime
    flow_run_id: UUID | None  # the waiting run it resumed (before_first_run)
    note: str | None


def approved_digests(connection: Connection, stage: str) -> frozenset[tuple[str, str]]:
    """(automate, digest) of every approval given at `stage`."""
    rows = connection.execute(
        select(approvals.c.automate, approvals.c.digest).where(approvals.c.stage == stage)
    )
    return frozenset((name, digest) for name, digest in rows)


def awaiting_enable_approval(connection: Connection, digests: Mapping[str, str]) -> frozenset[str]:
    """Of the `before_enable` automates given (name → digest of the declaration now), those
    whose current version nobody approved yet."""
    approved = approved_digests(connection, "before_enable")
    return frozenset(name for name, digest in digests.items() if (name, digest) not in approved)


def approval_of(connection: Connection, automate: str, digest: str, stage: str) -> Approval | None:
    """The approval of this version of the automate at `stage`, or None."""
    row = connection.execute(
        select(approvals).where(
            approvals.c.automate == automate,
            approvals.c.digest == digest,
            approvals.c.stage == stage,
        )
    ).one_or_none()
    return None if row is None else Approval.from_row(row)


def record_approval(
    connection: Connection,
    automate: str,
    digest: str,
    stage: str,
    approved_by: str,
    *,
    flow_run_id: UUID | None = None,
    note: str | None = None,
) -> tuple[Approval, bool]:
    """Record the approval of this version; (the approval row, whether it is new). A version
    approved already keeps its first approval: approving twice changes nothing."""
    inserted = connection.execute(
        insert(approvals)
        .values(
            automate=automate,
            digest=digest,
            stage=stage,
            approved_by=approved_by,
            flow_run_id=flow_run_id,
            note=note,
        )
        .on_conflict_do_nothing(index_elements=["automate", "digest", "stage"])
        .returning(approvals.c.id)
    ).one_or_none()
    row = approval_of(connection, automate, digest, stage)
    assert row is not None
    return row, inserted is not None
