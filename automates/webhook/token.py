"""The webhook's bearer token: the setting if given, else one secret generated once.

The generated token lives in `<data folder>/webhook.token`, readable by its owner only, so
`automates up` and a webhook restarted later agree on it without anyone choosing one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from automates.errors import SettingsError
from automates.settings import Settings

MIN_LENGTH = 16


def token_path(settings: Settings) -> Path:
    return settings.data_path / "webhook.token"


def token_source(settings: Settings) -> str:
    """Where the token comes from, for people: the setting's name or the file."""
    if settings.webhook.token is not None:
        return "AUTOMATES_WEBHOOK_TOKEN"
    return str(token_path(settings))


def webhook_token(settings: Settings) -> str:
    """The token callers must send as `Authorization: Bearer <token>`."""
    if settings.webhook.token is not None:
        token = settings.webhook.token.get_secret_value()
        if len(token) < MIN_LENGTH:
            raise SettingsError(f"AUTOMATES_WEBHOOK_TOKEN must be {MIN_LENGTH} characters or more")
        return token
    path = token_path(settings)
    if not path.exists():
        _generate(path)
    token = path.read_text().strip()
    if len(token) < MIN_LENGTH:
        raise SettingsError(f"{path} holds no usable token; delete it to generate a new one")
    return token


def _generate(path: Path) -> None:
    """Write a new token, published whole: of two processes starting at once, one token wins
    (the link fails for the other) and neither ever reads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f"{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
