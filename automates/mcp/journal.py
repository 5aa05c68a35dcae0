"""What the tool-call journal keeps of a call's arguments: never a secret, never a flood.

A value under a key that names a secret is replaced; long text is cut to its start and its
length, so a 20,000-character prompt is recorded as what it was without filling the journal.
"""

from __future__ import annotations

import re
from typing import Any

SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[-_]?key|credential|auth", re.I)
REDACTED = "[redacted]"
KEPT_CHARS = 200
MAX_DEPTH = 8


def journaled_arguments(arguments: Any, depth: int = 0) -> Any:
    """`arguments` as the journal records them."""
    if depth > MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(arguments, dict):
        return {
            str(key): REDACTED
            if SECRET_KEY.search(str(key))
            else journaled_arguments(value, depth + 1)
            for key, value in arguments.items()
        }
    if isinstance(arguments, list):
        return [journaled_arguments(item, depth + 1) for item in arguments]
    if isinstance(arguments, str) and len(arguments) > KEPT_CHARS:
        return f"{arguments[:KEPT_CHARS]}... ({len(arguments)} characters)"
    return arguments
