from __future__ import annotations

from pathlib import Path

import pytest

from automates.envfiles import load_env_files
from automates.settings import Settings
from automates.settings.groups import ServerSettings


def test_env_files_never_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first.env", tmp_path / "second.env"
    first.write_text("AUTOMATES_SERVER_PORT=4300\nAUTOMATES_WORK_POOL=from-first\n")
    second.write_text("AUTOMATES_WORK_POOL=from-second\nAUTOMATES_SERVER_HOST=0.0.0.0\n")
    monkeypatch.setenv("AUTOMATES_SERVER_HOST", "127.0.0.2")
    for name in ("AUTOMATES_SERVER_PORT", "AUTOMATES_WORK_POOL"):
        # Registered with monkeypatch so that what the loader sets is undone after the test.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)

    loaded = load_env_files([first, second, tmp_path / "missing.env"])

    assert sorted(loaded) == ["AUTOMATES_SERVER_PORT", "AUTOMATES_WORK_POOL"]
    settings = Settings()
    assert settings.server.port == 4300
    assert settings.work_pool == "from-first"  # the earlier file wins
    assert settings.server.host == "127.0.0.2"  # the environment wins over every file


def test_settings_reject_a_non_postgres_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATES_DATABASE_URL", "sqlite:///x.db")
    with pytest.raises(ValueError, match="AUTOMATES_DATABASE_URL must be a postgresql"):
        Settings()


def test_prefect_api_url_also_read_from_prefects_own_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().api_url == "http://127.0.0.1:4200/api"
    monkeypatch.setenv("PREFECT_API_URL", "http://elsewhere:4200/api")
    assert Settings().api_url == "http://elsewhere:4200/api"
    assert Settings().ui_url == "http://elsewhere:4200"


def test_settings_travel_to_child_processes_intact(monkeypatch: pytest.MonkeyPatch) -> None:
    given = Settings(installable_modules={"yaml": "pyyaml"}, server=ServerSettings(port=4300))
    exported = given.as_env()
    assert set(exported) == {"AUTOMATES_INSTALLABLE_MODULES", "AUTOMATES_SERVER_PORT"}
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.installable_modules == {"yaml": "pyyaml"} and child.server.port == 4300
