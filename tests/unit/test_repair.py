"""Self-repair: each failure class is recognised, and only safe fixes are applied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from automates.guard.repair import LOG_DIR_ENV, Diagnosis, diagnose, install_command, repair
from automates.guard.script import ScriptFailed


@pytest.mark.parametrize(
    ("error", "kind", "detail"),
    [
        (FileNotFoundError(2, "No such file", "/data/exports/today.csv"), "missing-directory",
         "/data/exports"),
        (ScriptFailed(["x.sh"], 1, ["cannot open /data/out/report.txt"]), "missing-directory",
         "/data/out"),
        (ScriptFailed(["x.sh"], 2, ["x.sh: /srv/a/b.csv: No such file or directory"]),
         "missing-directory", "/srv/a"),
        (PermissionError(13, "Permission denied", "/var/log/job.log"), "unwritable-log",
         "/var/log/job.log"),
        (ScriptFailed(["x.sh"], 1, ["tee: /var/log/job.log: Permission denied"]),
         "unwritable-log", "/var/log/job.log"),
        (ConnectionRefusedError("refused"), "transient-network", "ConnectionRefusedError"),
        (ScriptFailed(["x.sh"], 6, ["curl: (6) Could not resolve host: api.bank"]),
         "transient-network", "ScriptFailed"),
        (ModuleNotFoundError("No module named 'yaml'", name="yaml"), "missing-module", "yaml"),
        (ScriptFailed(["x.py"], 1, ["ModuleNotFoundError: No module named 'lxml.etree'"]),
         "missing-module", "lxml"),
    ],
)  # fmt: skip
def test_failures_are_classified(error: BaseException, kind: str, detail: str) -> None:
    assert diagnose(error) == Diagnosis(kind, detail)


def test_an_unknown_failure_is_not_classified() -> None:
    assert diagnose(ValueError("bad input row 7")) is None


def test_a_missing_directory_is_created_only_inside_the_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    inside = Diagnosis("missing-directory", str(data / "exports" / "daily"))
    message, retry = repair(inside, data_root=data, automate="a1", installable={})
    assert retry and (data / "exports" / "daily").is_dir()
    assert message.startswith("created missing directory")

    outside = Diagnosis("missing-directory", str(tmp_path / "elsewhere"))
    message, retry = repair(outside, data_root=data, automate="a1", installable={})
    assert not retry and not (tmp_path / "elsewhere").exists()
    assert "outside the data folder" in message

    escape = Diagnosis("missing-directory", str(data / ".." / "escaped"))
    assert repair(escape, data_root=data, automate="a1", installable={})[1] is False
    assert not (tmp_path / "escaped").exists()


def test_an_unwritable_log_is_redirected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_DIR_ENV, "/var/log/readonly")
    message, retry = repair(
        Diagnosis("unwritable-log", "/var/log/readonly/job.log"),
        data_root=tmp_path,
        automate="a1",
        installable={},
    )
    assert retry
    redirected = Path(os.environ[LOG_DIR_ENV])
    assert redirected.is_dir() and os.access(redirected, os.W_OK)
    assert str(redirected) in message


def test_a_missing_module_off_the_allowlist_is_reported_not_installed(tmp_path: Path) -> None:
    message, retry = repair(
        Diagnosis("missing-module", "yaml_extras"),
        data_root=tmp_path,
        automate="a1",
        installable={"something_else": "something-else"},
    )
    assert not retry
    assert " ".join(install_command("yaml_extras")) in message
    assert "not on the install allowlist" in message


def _wheel(folder: Path) -> Path:
    """A minimal wheel of one module, made here: installing it needs no build and no network."""
    import zipfile

    wheel = folder / "automates_repair_probe-1.0-py3-none-any.whl"
    info = "automates_repair_probe-1.0.dist-info"
    files = {
        "automates_repair_probe.py": "VALUE = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: automates-repair-probe\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return wheel


def test_an_allowlisted_module_is_installed(tmp_path: Path) -> None:
    import subprocess
    import sys

    wheel = _wheel(tmp_path)
    try:
        message, retry = repair(
            Diagnosis("missing-module", "automates_repair_probe"),
            data_root=tmp_path,
            automate="a1",
            installable={"automates_repair_probe": str(wheel)},
        )
        assert retry, message
        assert message.startswith("installed missing module 'automates_repair_probe'")
        imported = subprocess.run(
            [sys.executable, "-c", "import automates_repair_probe as m; print(m.VALUE)"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert imported.stdout.strip() == "42"
    finally:
        uninstall = install_command("automates-repair-probe")
        uninstall[uninstall.index("install")] = "uninstall"
        if uninstall[:3] == [sys.executable, "-m", "pip"]:
            uninstall.append("-y")
        subprocess.run(uninstall, capture_output=True, check=False)
