"""Test harness: a real PostgreSQL and a real Prefect server for the whole session.

PostgreSQL comes from AUTOMATES_TEST_DATABASE_URL (CI uses the machine's own) or, on a fresh
machine, from the embedded wheel in a temporary folder. Each session works in a fresh database
of its own, dropped at the end. Nothing here skips: if PostgreSQL cannot be reached, the tests
that need it error, and under CI (or with AUTOMATES_TEST_DATABASE_URL set) a run in which no
PostgreSQL test passed fails.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

# Tests start from a clean slate: no project or Prefect variable of the developer's shell leaks in.
# AUTOMATES_UI_SCREENSHOTS=1 asks the UI journeys to rewrite docs/images/ui/ (tests/fixtures/ui.py);
# read here, then removed like the rest (the CLI refuses an AUTOMATES_ variable that is no setting).
UI_SCREENSHOTS = os.environ.get("AUTOMATES_UI_SCREENSHOTS") == "1"
for _name in list(os.environ):
    if _name.startswith("AUTOMATES_") and _name != "AUTOMATES_TEST_DATABASE_URL":
        del os.environ[_name]
for _name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
    os.environ.pop(_name, None)

REPO = Path(__file__).resolve().parents[1]
# Fixtures shared by several modules are registered here, once: a fixture imported into two test
# modules would be two fixtures, and a session-scoped one would run twice (two gates, four
# residential workers on one pool).
pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.projects",
    "tests.fixtures.task_runs",
    "tests.fixtures.browser_layer",
    "tests.fixtures.browser_site",
    "tests.fixtures.browser_xvfb",
    "tests.fixtures.receivers",
    "tests.fixtures.agent_scope",
    "tests.fixtures.fake_claude.messages_api",
    "tests.fixtures.ui",
]

# PostgreSQL tests seen and passed, counted where reports arrive: in the one pytest process, or
# under pytest-xdist in the controller, which runs no test itself.
_postgres_seen = 0
_postgres_passed = 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A maintenance URL of a real PostgreSQL server (external, or embedded for the session)."""
    external = os.environ.get("AUTOMATES_TEST_DATABASE_URL")
    if external:
        yield external
        return
    from automates.store import embedded_pg
    from automates.store.urls import with_database

    data = tmp_path_factory.mktemp("embedded")
    yield with_database(embedded_pg.start(data), "postgres")
    embedded_pg.stop(data)


@contextmanager
def fresh_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url`, dropped afterwards."""
    from automates.store.urls import with_database

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh database for this session (Prefect server and store), dropped at the end."""
    with fresh_database(postgres_admin_url, "automates_test") as url:
        yield url


@pytest.fixture
def scratch_database(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    with fresh_database(postgres_admin_url, "automates_scratch") as url:
        yield url


# The longest module (test_ha.py: over six minutes, measured in a clean-clone CI run) goes
# first. The two test processes take whole modules in collection order (scripts/test); started
# last, it would run on alone while the other process sits idle. The rest keep their order.
LONGEST_FIRST = ("test_ha.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each module's tests keep their order
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & {"database_url", "scratch_database", "postgres_admin_url", "server"}:
            item.add_marker(pytest.mark.postgres)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _postgres_seen, _postgres_passed
    if "postgres" not in report.keywords:
        return
    _postgres_seen += report.when == "setup"
    _postgres_passed += report.when == "call" and report.passed


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller, which sees every report, decides
    required = os.environ.get("CI") or os.environ.get("AUTOMATES_TEST_DATABASE_URL")
    if required and _postgres_seen and _postgres_passed == 0:
        print("\nno PostgreSQL test passed; failing the run (a PostgreSQL was required).")
        session.exitstatus = 1


def shipped_registry() -> Any:
    """The registry this checkout ships (deployments/registry.yaml)."""
    from automates.registry.loader import load_registry

    return load_registry(REPO / "deployments" / "registry.yaml")
