"""A forked run keeps its launcher's Prefect settings only when nothing they are built from
differs (automates/platform/settings_inputs.py)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from prefect.settings import Settings
from prefect.settings.base import PrefectBaseSettings
from pydantic import AliasChoices

from automates.platform.settings_inputs import NOT_SETTINGS, PREFIX, SettingsInputs


def environment_names(model: type[PrefectBaseSettings]) -> set[str]:
    """Every environment variable name Prefect reads a setting from."""
    names: set[str] = set()
    prefix = str(model.model_config.get("env_prefix") or "")
    for name, field in model.model_fields.items():
        if inspect.isclass(field.annotation) and issubclass(field.annotation, PrefectBaseSettings):
            names |= environment_names(field.annotation)
            continue
        names.add(f"{prefix}{name}".upper())
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        names |= {choice.upper() for choice in choices if isinstance(choice, str)}
    return names


def test_every_prefect_setting_is_read_from_a_variable_the_inputs_count() -> None:
    # If an upgrade of Prefect adds a setting read from another name, this fails and
    # settings_inputs.py is re-examined.
    names = environment_names(Settings)
    assert len(names) > 200
    assert all(name.startswith(PREFIX) and not name.startswith(NOT_SETTINGS) for name in names)


def inputs(environ: dict[str, str], folder: Path, profiles: Path) -> SettingsInputs:
    return SettingsInputs.of(environ, folder, profiles)


def test_the_same_inputs_hold_and_a_runs_own_variables_change_nothing(tmp_path: Path) -> None:
    profiles = tmp_path / "home" / ".prefect" / "profiles.toml"
    launcher = {"HOME": str(tmp_path / "home"), "PREFECT_API_URL": "http://a/api", "PATH": "/x"}
    noted = inputs(launcher, tmp_path, profiles)
    run = {
        **launcher,
        "PATH": "/y",  # not a setting
        "AUTOMATES_GUARD": "{}",
        "PREFECT__FLOW_RUN_ID": "1234",  # a run's own, not a setting
        "PREFECT__FLOW_ENTRYPOINT": "flows/x.py:x",
    }
    assert noted.hold_for(run, tmp_path)


def test_any_setting_variable_or_file_that_differs_breaks_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    profiles = home / ".prefect" / "profiles.toml"
    launcher = {"HOME": str(home), "PREFECT_API_URL": "http://a/api"}
    noted = inputs(launcher, tmp_path, profiles)
    assert not noted.hold_for({**launcher, "PREFECT_API_URL": "http://b/api"}, tmp_path)
    assert not noted.hold_for({**launcher, "PREFECT_LOGGING_LEVEL": "DEBUG"}, tmp_path)
    assert not noted.hold_for({**launcher, "prefect_logging_level": "DEBUG"}, tmp_path)
    assert not noted.hold_for({"HOME": str(home)}, tmp_path)  # one fewer
    assert not noted.hold_for({**launcher, "HOME": str(tmp_path)}, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    assert not noted.hold_for(launcher, other)
    for written in (tmp_path / ".env", tmp_path / "prefect.toml", tmp_path / "pyproject.toml"):
        written.write_text("# a file Prefect reads its settings from\n")
        assert not noted.hold_for(launcher, tmp_path), written.name
        written.unlink()
        assert noted.hold_for(launcher, tmp_path)
    profiles.parent.mkdir(parents=True)
    profiles.write_text('active = "x"\n')
    assert not noted.hold_for(launcher, tmp_path)
    again = inputs(launcher, tmp_path, profiles)
    profiles.write_text('active = "y"\n')
    os.utime(profiles, ns=(profiles.stat().st_atime_ns, profiles.stat().st_mtime_ns + 10**9))
    assert not again.hold_for(launcher, tmp_path)  # changed in place
