"""The webhook's tokens: new ones random and recognisable, kept as digests; the setting's token
checked for length."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import SecretStr

from automates.errors import SettingsError
from automates.settings import Settings
from automates.settings.groups import WebhookSettings
from automates.webhook.callers import Gatekeeper
from automates.webhook.token import digest, new_token, setting_token


def settings(tmp_path: Path, token: str | None = None) -> Settings:
    return Settings(
        project_root=tmp_path,
        data_dir=tmp_path / "data",
        webhook=WebhookSettings(token=None if token is None else SecretStr(token)),
    )


def test_new_tokens_are_long_random_and_kept_as_their_digest() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(t.startswith("awh_") and len(t) >= 40 for t in tokens)
    token = tokens.pop()
    assert digest(token) == hashlib.sha256(token.encode()).hexdigest()


def test_the_setting_must_be_long_enough(tmp_path: Path) -> None:
    assert setting_token(settings(tmp_path)) is None
    assert setting_token(settings(tmp_path, "s" * 16)) == "s" * 16
    with pytest.raises(SettingsError, match="16 characters"):
        setting_token(settings(tmp_path, "short"))


def test_the_settings_token_is_the_caller_default_and_nothing_else_passes_without_a_store() -> None:
    gatekeeper = Gatekeeper(None, "s" * 16)
    admitted = gatekeeper.admit("s" * 16)
    assert admitted is not None and admitted.name == "default" and admitted.may_start("any")
    assert gatekeeper.admit("s" * 15) is None
    assert gatekeeper.admit("") is None
