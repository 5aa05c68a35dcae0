"""What Prefect builds its settings from, to tell whether a forked run needs them built again.

A run's process forked from the run launcher (run_launcher.py) inherits the launcher's Prefect
settings, built at import from the launcher's environment and folder. Building them again from
the run's costs about 45 ms (226 settings in 55 models, each reading the environment, `.env`,
`prefect.toml`, `pyproject.toml` and the profiles file). They come out the same when nothing
they are built from differs, which this module checks in well under a millisecond.

Prefect 3.8.8's sources (prefect/settings/base.py `settings_customise_sources`,
prefect/settings/sources.py): environment variables named `PREFECT_…` in any case (every
setting's name and alias has that prefix; `PREFECT__…`, such as a run's `PREFECT__FLOW_RUN_ID`,
name no setting), the working folder's `.env`, `prefect.toml` and `pyproject.toml`, and the
profiles file, found from those or under the home folder. Each file counts by its size and
modification time; tests/unit/test_settings_inputs.py fails if an upgrade adds a setting
outside the prefix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PREFIX = "PREFECT_"
NOT_SETTINGS = "PREFECT__"  # a run's own variables (its id, its entrypoint), never settings
FOLDER_FILES = (".env", "prefect.toml", "pyproject.toml")
HOME_PROFILES = Path(".prefect") / "profiles.toml"

FileStamp = tuple[int, int] | None


def _stamp(path: Path) -> FileStamp:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_size, found.st_mtime_ns)


@dataclass(frozen=True)
class SettingsInputs:
    """Everything Prefect's settings are built from, as found at one moment."""

    variables: tuple[tuple[str, str], ...]
    home: str | None
    folder: str
    profiles: str
    files: tuple[tuple[str, FileStamp], ...]

    @classmethod
    def of(cls, environ: Mapping[str, str], folder: Path, profiles: Path) -> SettingsInputs:
        """The inputs for `environ` in `folder`; `profiles` is the profiles file the settings
        named when the first inputs were taken (the same for the same inputs)."""
        variables = sorted(
            (name.upper(), value)
            for name, value in environ.items()
            if name.upper().startswith(PREFIX) and not name.upper().startswith(NOT_SETTINGS)
        )
        home = environ.get("HOME")
        paths = [folder / name for name in FOLDER_FILES]
        paths.append(profiles)
        if home:
            paths.append(Path(home) / HOME_PROFILES)
        return cls(
            variables=tuple(variables),
            home=home,
            folder=str(folder),
            profiles=str(profiles),
            files=tuple((str(path), _stamp(path)) for path in paths),
        )

    def hold_for(self, environ: Mapping[str, str], folder: Path) -> bool:
        """Whether `environ` in `folder` gives the settings these inputs gave."""
        return SettingsInputs.of(environ, folder, Path(self.profiles)) == self
