"""The guarded run this code runs in: set by the runner around a run's body."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from automates.registry.policy import GuardPolicy

_CURRENT: ContextVar[GuardPolicy | None] = ContextVar("automates_guard_policy", default=None)


@contextmanager
def in_force(policy: GuardPolicy) -> Iterator[None]:
    """Make `policy` the one `current()` answers while a guarded body runs (in its thread)."""
    token = _CURRENT.set(policy)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> GuardPolicy | None:
    """The policy of the guarded run this code runs in, or None outside the guard."""
    return _CURRENT.get()
