"""The shipped registry: valid, every entrypoint imports, and prefect.yaml is current."""

from __future__ import annotations

from pathlib import Path

import prefect

from automates.registry.entrypoints import probe_imports, static_problems
from automates.registry.loader import load_registry
from automates.server.prefect_yaml import render
from automates.settings import Settings
from tests.conftest import REPO


def test_every_declared_automate_validates_and_imports() -> None:
    settings = Settings(project_root=REPO)
    registry = load_registry(settings.registry_path)
    assert static_problems(registry, REPO) == []
    entrypoints = [a.flow_entrypoint for a in registry.automates]
    assert probe_imports(entrypoints, REPO) == {}
    recurring = [a for a in registry.automates if a.kind == "recurring"]
    assert len(recurring) >= 4, "the registry ships reconcile and at least three real automates"


def test_the_import_probe_reports_a_broken_module(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    (tmp_path / "fine.py").write_text("from prefect import flow\n\n@flow\ndef ok():\n    pass\n")
    failures = probe_imports(["broken.py", "fine.py:ok", "fine.py:missing"], tmp_path)
    assert set(failures) == {"broken.py", "fine.py:missing"}
    assert "not_a_module_anywhere" in failures["broken.py"]


def test_committed_prefect_yaml_is_rendered_from_the_registry() -> None:
    settings = Settings(project_root=REPO)
    registry = load_registry(settings.registry_path)
    expected = render(registry, settings.work_pool, prefect.__version__)
    assert (REPO / "prefect.yaml").read_text() == expected, "run `automates render-prefect-yaml`"
