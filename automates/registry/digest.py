"""The digest of a declaration: equal digests mean the stored row and an approval still hold."""

from __future__ import annotations

import hashlib
import json

from automates.registry.model import Automate


def declaration_digest(automate: Automate, work_pool: str) -> str:
    """A digest of everything stored for an automate: equal digests mean nothing to write."""
    document = {**automate.model_dump(mode="json"), "work_pool": work_pool}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
