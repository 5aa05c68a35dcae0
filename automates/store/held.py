"""Which automates keep their schedules paused, whatever their declaration says.

Three reasons, each from the store: an open circuit breaker (automates/guard/breaker.py), an
open hold for operator review (automates/store/holds.py), or an `approval: before_enable`
automate whose current version nobody approved (automates/store/approvals.py). Sync and
reconcile both ask here, so neither re-activates a schedule one of them holds.
"""

from __future__ import annotations

from sqlalchemy import Connection

from automates.registry.digest import declaration_digest
from automates.registry.model import Registry
from automates.scheduling.approval import Approval
from automates.store.approvals import awaiting_enable_approval
from automates.store.breakers import held_automates
from automates.store.holds import held_for_review


def schedules_held(connection: Connection, registry: Registry, default_pool: str) -> frozenset[str]:
    gated = {
        a.name: declaration_digest(a, a.work_pool or default_pool)
        for a in registry.automates
        if a.approval is Approval.BEFORE_ENABLE
    }
    return (
        held_automates(connection)
        | held_for_review(connection)
        | awaiting_enable_approval(connection, gated)
    )
