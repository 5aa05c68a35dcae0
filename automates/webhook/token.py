"""The webhook's tokens: new ones, their digests, and the two that do not live in the store.

Every caller has its own token (automates/webhook/callers.py), kept in the store as its
SHA-256 only: a token is 256 random bits, so a fast digest is as good as a slow one and keeps
each request's check to one indexed lookup. Two tokens come from elsewhere:

- `AUTOMATES_WEBHOOK_TOKEN`, for a layer configured by environment alone (a container): the
  token of the caller named `default`, revoked by unsetting it;
- `<data folder>/webhook.token`, the one shared token that earlier versions generated: the
  webhook imports it once as the store caller `default` (its digest only) and deletes the file,
  so callers configured with it keep working until an operator revokes it.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from automates.errors import SettingsError
from automates.settings import Settings

MIN_LENGTH = 16
SETTING_CALLER = "default"
# Recognisable in a leaked log or a secret scanner's rules; the rest is 256 random bits.
PREFIX = "awh_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def setting_token(settings: Settings) -> str | None:
    """`AUTOMATES_WEBHOOK_TOKEN`, checked; None when unset."""
    if settings.webhook.token is None:
        return None
    token = settings.webhook.token.get_secret_value()
    if len(token) < MIN_LENGTH:
        raise SettingsError(f"AUTOMATES_WEBHOOK_TOKEN must be {MIN_LENGTH} characters or more")
    return token


def legacy_token_path(settings: Settings) -> Path:
    return settings.data_path / "webhook.token"
