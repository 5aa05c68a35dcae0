"""Statements on the webhook's callers: one named token each, kept as its SHA-256.

A caller is admitted by the digest of the token it sends; the same statement stamps its last
use, so `automates webhook list` shows which tokens are still in use before one is revoked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from automates.store.rows import StoredRow
from automates.store.schema import webhook_callers


@dataclass(frozen=True)
class WebhookCaller(StoredRow):
    """A row of `webhook_callers` (never its token: the store does not have it)."""

    name: str
    automates: list[str] | None  # None: every automate that takes webhook runs
    created_by: str
    created_at: datetime
    rotated_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def may_start(self, automate: str) -> bool:
        return self.automates is None or automate in self.automates


def stored_callers(connection: Connection) -> list[WebhookCaller]:
    query = select(webhook_callers).order_by(webhook_callers.c.name)
    return [WebhookCaller.from_row(row) for row in connection.execute(query)]


def stored_caller(connection: Connection, name: str) -> WebhookCaller | None:
    row = connection.execute(select(webhook_callers).where(webhook_callers.c.name == name)).first()
    return None if row is None else WebhookCaller.from_row(row)


def insert_caller(
    connection: Connection,
    name: str,
    token_sha256: str,
    automates: list[str] | None,
    created_by: str,
) -> WebhookCaller | None:
    """The new caller, or None when one of that name exists (revoked or not)."""
    row = connection.execute(
        insert(webhook_callers)
        .values(name=name, token_sha256=token_sha256, automates=automates, created_by=created_by)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(*webhook_callers.c)
    ).first()
    return None if row is None else WebhookCaller.from_row(row)


def replace_token(connection: Connection, name: str, token_sha256: str) -> WebhookCaller | None:
    """Give the caller a new token (the old one stops working at once) and lift a revocation;
    None when there is no such caller."""
    row = connection.execute(
        update(webhook_callers)
        .where(webhook_callers.c.name == name)
        .values(token_sha256=token_sha256, rotated_at=func.now(), revoked_at=None, revoked_by=None)
        .returning(*webhook_callers.c)
    ).first()
    return None if row is None else WebhookCaller.from_row(row)


def revoke(connection: Connection, name: str, by: str) -> WebhookCaller | None:
    """Stamp the caller revoked (kept, so the runs it started still name a known caller);
    None when there is no such caller. Revoking twice keeps the first stamp."""
    row = connection.execute(
        update(webhook_callers)
        .where(webhook_callers.c.name == name)
        .values(
            revoked_at=func.coalesce(webhook_callers.c.revoked_at, func.now()),
            revoked_by=func.coalesce(webhook_callers.c.revoked_by, by),
        )
        .returning(*webhook_callers.c)
    ).first()
    return None if row is None else WebhookCaller.from_row(row)


def admit(connection: Connection, token_sha256: str) -> WebhookCaller | None:
    """The active caller whose token has this digest, its last use stamped; None if none."""
    row = connection.execute(
        update(webhook_callers)
        .where(webhook_callers.c.token_sha256 == token_sha256)
        .where(webhook_callers.c.revoked_at.is_(None))
        .values(last_used_at=func.now())
        .returning(*webhook_callers.c)
    ).first()
    return None if row is None else WebhookCaller.from_row(row)
