"""The webhook's callers: who a bearer token belongs to, and their book (add, rotate, revoke).

A caller is a name (a slug), a token shown once when it is made, and optionally the automates
it may start. Its runs are tagged `principal:webhook:NAME`; revoking it stops its token at
once (each request reads the store: no cache to outlive a revocation) and keeps its row, so
the runs it started still name a caller the operator can look up.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from automates.errors import AutomatesError, WebhookCallerError
from automates.registry.fields import SLUG
from automates.registry.loader import load_registry
from automates.settings import Settings
from automates.store import webhook_callers as book
from automates.store.engine import transaction
from automates.store.webhook_callers import WebhookCaller
from automates.webhook.token import (
    SETTING_CALLER,
    digest,
    legacy_token_path,
    new_token,
    setting_token,
)

log = logging.getLogger("automates.webhook")


@dataclass(frozen=True)
class Admitted:
    """The caller a request's token belongs to."""

    name: str
    automates: tuple[str, ...] | None  # None: every automate that takes webhook runs

    def may_start(self, automate: str) -> bool:
        return self.automates is None or automate in self.automates


@dataclass(frozen=True)
class Gatekeeper:
    """Admits a token: the setting's caller first (compared in constant time), else the store's
    active caller with that token's digest."""

    engine: Engine | None  # None: the store is not consulted (only the setting's token counts)
    setting: str | None = field(default=None, repr=False)

    def admit(self, token: str) -> Admitted | None:
        if not token:
            return None
        if self.setting is not None and hmac.compare_digest(token.encode(), self.setting.encode()):
            return Admitted(SETTING_CALLER, None)
        if self.engine is None:
            return None
        with transaction(self.engine) as connection:
            caller = book.admit(connection, digest(token))
        if caller is None:
            return None
        return Admitted(caller.name, None if caller.automates is None else tuple(caller.automates))


def callers(engine: Engine) -> list[WebhookCaller]:
    with transaction(engine) as connection:
        return book.stored_callers(connection)


def add(
    settings: Settings, engine: Engine, name: str, automates: Sequence[str], by: str
) -> tuple[WebhookCaller, str]:
    """A new caller and its token (shown once: the store keeps only its digest)."""
    _check_name(settings, name)
    allowed = _check_automates(settings, automates) if automates else None
    token = new_token()
    with transaction(engine) as connection:
        caller = book.insert_caller(connection, name, digest(token), allowed, by)
    if caller is None:
        raise WebhookCallerError(
            f"webhook caller {name!r} exists: `automates webhook rotate {name}` gives it a new "
            "token; nothing was changed"
        )
    return caller, token


def rotate(engine: Engine, name: str) -> tuple[WebhookCaller, str]:
    """A new token for the caller (its old one stops at once; a revoked caller is restored)."""
    token = new_token()
    with transaction(engine) as connection:
        caller = book.replace_token(connection, name, digest(token))
    if caller is None:
        raise _unknown(name)
    return caller, token


def revoke(engine: Engine, name: str, by: str) -> WebhookCaller:
    with transaction(engine) as connection:
        caller = book.revoke(connection, name, by)
    if caller is None:
        raise _unknown(name)
    return caller


def import_legacy_token(settings: Settings, engine: Engine) -> bool:
    """Move the shared token of earlier versions into the store as the caller `default` (its
    digest only) and delete its file; whether there was one to move. With
    `AUTOMATES_WEBHOOK_TOKEN` set the file was never used (the setting won), so it is left."""
    path = legacy_token_path(settings)
    if setting_token(settings) is not None or not path.exists():
        return False
    token = path.read_text().strip()
    if token:
        with transaction(engine) as connection:
            book.insert_caller(connection, SETTING_CALLER, digest(token), None, "webhook.token")
    path.unlink()
    log.warning(
        "imported the shared token of %s as webhook caller %r; give each caller its own "
        "(`automates webhook add NAME`), then `automates webhook revoke %s`",
        path,
        SETTING_CALLER,
        SETTING_CALLER,
    )
    return True


def _check_name(settings: Settings, name: str) -> None:
    if not SLUG.match(name) or len(name) > 63:
        raise WebhookCallerError(
            f"webhook caller {name!r}: a name is a slug (lowercase letters, digits and inner "
            "hyphens, 63 at most); nothing was changed"
        )
    if name == SETTING_CALLER and setting_token(settings) is not None:
        raise WebhookCallerError(
            f"webhook caller {name!r} is AUTOMATES_WEBHOOK_TOKEN's; choose another name"
        )


def _check_automates(settings: Settings, names: Sequence[str]) -> list[str]:
    """The automates named, each declared with `webhook: true` (else nothing is changed)."""
    try:
        registry = load_registry(settings.registry_path)
    except AutomatesError as error:
        raise WebhookCallerError(f"--automate cannot be checked: {error}") from error
    refused = [n for n in names if (a := registry.get(n)) is None or not a.webhook]
    if refused:
        raise WebhookCallerError(
            f"--automate {', '.join(refused)}: not declared with `webhook: true` in "
            f"{settings.registry_path}; nothing was changed"
        )
    return sorted(set(names))


def _unknown(name: str) -> WebhookCallerError:
    return WebhookCallerError(
        f"no webhook caller named {name!r} (`automates webhook list` shows them)"
    )
