"""How an automate's run outcomes reach people: a mode and the routes, with a project default
in the routes file and an override per automate in the registry (delivered by
automates/alerts/deliverer.py)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from automates.fields import Frozen
from automates.limits import MAX_LIST_ITEMS
from automates.registry.alert_kinds import AlertKind
from automates.registry.fields import Slug


class DeliveryMode(StrEnum):
    ANNOUNCE = "announce"  # completed (when new), findings and failures
    FAILURE_ONLY = "failure_only"  # findings and failures
    NONE = "none"

    def delivers(self, kind: AlertKind) -> bool:
        if self is DeliveryMode.NONE or not kind.is_outcome:
            return False
        return self is DeliveryMode.ANNOUNCE or kind is not AlertKind.RUN_COMPLETED


class Delivery(Frozen):
    mode: DeliveryMode = Field(
        default=DeliveryMode.FAILURE_ONLY,
        description="announce (completed runs too), failure_only (findings and failures) or none.",
    )
    routes: tuple[Slug, ...] | None = Field(
        default=None,
        max_length=MAX_LIST_ITEMS,
        description="The routes outcomes go to (default: the routes file's `alerts.default`).",
    )
    unchanged: bool = Field(
        default=False,
        description="Announce a completed run whose summary is the same as the last one "
        "announced (by default such a run did nothing new and is silent).",
    )
