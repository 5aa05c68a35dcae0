"""The webhook's token: generated once, owner-only, stable; or given as a setting."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from automates.errors import SettingsError
from automates.settings import Settings
from automates.settings.groups import WebhookSettings
from automates.webhook.token import token_path, token_source, webhook_token


def settings(tmp_path: Path, token: str | None = None) -> Settings:
    return Settings(
        project_root=tmp_path,
        data_dir=tmp_path / "data",
        webhook=WebhookSettings(token=None if token is None else SecretStr(token)),
    )


def test_a_token_is_generated_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    first = webhook_token(settings(tmp_path))
    assert len(first) >= 32
    path = token_path(settings(tmp_path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert webhook_token(settings(tmp_path)) == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["webhook.token"]  # no draft left
    assert token_source(settings(tmp_path)) == str(path)


def test_the_setting_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    assert webhook_token(settings(tmp_path, "s" * 16)) == "s" * 16
    assert token_source(settings(tmp_path, "s" * 16)) == "AUTOMATES_WEBHOOK_TOKEN"
    assert not token_path(settings(tmp_path)).exists()
    with pytest.raises(SettingsError, match="16 characters"):
        webhook_token(settings(tmp_path, "short"))


def test_an_unusable_token_file_is_refused(tmp_path: Path) -> None:
    path = token_path(settings(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_text("\n")
    with pytest.raises(SettingsError, match="delete it"):
        webhook_token(settings(tmp_path))
