"""A worker's checkout follows its upstream only by fast-forward, only when idle, and a failed
update never stops it: on real temporary git repositories."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from automates.platform.code_update import CheckoutUpdater
from tests.fixtures.projects import git


def commit(where: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (where / name).write_text(text)
    git(where, "add", *files)
    git(where, "commit", "-q", "-m", message)
    return git(where, "rev-parse", "HEAD")


@dataclass
class Repos:
    origin: Path  # the bare repository both push to and pull from
    dev: Path  # where new commits are made and pushed
    worker: Path  # the worker's checkout, tracking origin/main

    def push(self, files: dict[str, str], message: str = "change") -> str:
        sha = commit(self.dev, files, message)
        git(self.dev, "push", "-q", "origin", "main")
        return sha

    def head(self) -> str:
        return git(self.worker, "rev-parse", "HEAD")


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    origin, dev, worker = tmp_path / "origin.git", tmp_path / "dev", tmp_path / "worker"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "clone", "-q", str(origin), str(dev)], check=True)
    git(dev, "checkout", "-q", "-b", "main")
    commit(dev, {"flow.py": "VALUE = 'old'\n"}, "first")
    git(dev, "push", "-q", "-u", "origin", "main")
    subprocess.run(["git", "clone", "-q", str(origin), str(worker)], check=True)
    return Repos(origin, dev, worker)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


LOGGER = logging.getLogger("tests.code_update")


def updater(checkout: Path, clock: Clock | None = None, **kwargs: object) -> CheckoutUpdater:
    return CheckoutUpdater(checkout, 60, LOGGER, clock=clock or Clock(), **kwargs)  # type: ignore[arg-type]


def idle() -> int:
    return 0


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_idle_worker_fast_forwards_to_its_upstream(
    repos: Repos, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER.name)
    keeper = updater(repos.worker)
    assert keeper.poll(idle) is None  # up to date: nothing to do
    new = repos.push({"flow.py": "VALUE = 'new'\n"})
    clock = Clock()
    keeper = updater(repos.worker, clock)
    assert keeper.poll(idle) == new
    assert repos.head() == new
    assert (repos.worker / "flow.py").read_text() == "VALUE = 'new'\n"
    assert warnings_of(caplog) == []
    assert any("restarting on the new code" in r.getMessage() for r in caplog.records)


def test_an_update_compiles_the_checkouts_packages(repos: Repos) -> None:
    (repos.dev / "flows").mkdir()
    new = repos.push({"flows/report.py": "VALUE = 'new'\n"})
    assert updater(repos.worker).poll(idle) == new
    [compiled] = (repos.worker / "flows" / "__pycache__").glob("report.*.pyc")
    assert compiled.stat().st_size > 0


def test_a_busy_worker_fetches_but_changes_no_file_until_idle(
    repos: Repos, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER.name)
    old = repos.head()
    clock = Clock()
    keeper = updater(repos.worker, clock)
    assert keeper.poll(idle) is None
    new = repos.push({"flow.py": "VALUE = 'new'\n"})
    in_flight = [1]
    for _ in range(3):  # polls while a run is in flight, one fetch each
        clock.now += 60
        assert keeper.poll(lambda: in_flight[0]) is None
    assert repos.head() == old
    assert (repos.worker / "flow.py").read_text() == "VALUE = 'old'\n"
    assert git(repos.worker, "rev-parse", "origin/main") == new  # fetched, not merged
    waits = [r.getMessage() for r in caplog.records if "waits" in r.getMessage()]
    assert waits == [f"update of {repos.worker} to {new[:12]} waits: 1 run(s) in flight"]
    in_flight[0] = 0
    assert keeper.poll(lambda: in_flight[0]) == new  # the next poll, idle: no new fetch needed
    assert repos.head() == new


def test_it_fetches_at_most_once_per_interval(repos: Repos) -> None:
    clock = Clock()
    keeper = updater(repos.worker, clock)
    assert keeper.poll(idle) is None
    new = repos.push({"flow.py": "VALUE = 'new'\n"})
    clock.now += 59
    assert keeper.poll(idle) is None  # not due: the new commit is not seen yet
    assert git(repos.worker, "rev-parse", "origin/main") != new
    clock.now += 1
    assert keeper.poll(idle) == new


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        ("no-upstream", "no upstream configured"),
        ("diverged", "have diverged"),
        ("local-change", "cannot fast-forward"),
        ("origin-gone", "does not appear to be a git repository"),
        ("not-a-checkout", "not a git repository"),
    ],
)
def test_a_failed_update_is_said_once_and_the_checkout_stays(
    repos: Repos, tmp_path: Path, caplog: pytest.LogCaptureFixture, spoil: str, said: str
) -> None:
    checkout = repos.worker
    repos.push({"flow.py": "VALUE = 'new'\n"})
    if spoil == "no-upstream":
        git(checkout, "branch", "-q", "--unset-upstream")
    elif spoil == "diverged":
        commit(checkout, {"local.txt": "mine\n"}, "a commit of the worker's own")
    elif spoil == "local-change":
        (checkout / "flow.py").write_text("VALUE = 'edited on the host'\n")
    elif spoil == "origin-gone":
        shutil.rmtree(repos.origin)
    else:
        checkout = tmp_path / "plain"
        checkout.mkdir()
    before = git(repos.worker, "rev-parse", "HEAD")
    clock = Clock()
    keeper = updater(checkout, clock)
    for _ in range(3):
        assert keeper.poll(idle) is None
        clock.now += 60
    assert git(repos.worker, "rev-parse", "HEAD") == before
    problems = warnings_of(caplog)
    assert len(problems) == 1, problems
    assert said in problems[0] and "carries on with the code it has" in problems[0]


def test_a_changed_lock_reinstalls_the_environment_or_stays_on_the_old_commit(
    repos: Repos, caplog: pytest.LogCaptureFixture
) -> None:
    commands: list[Sequence[str]] = []

    def installs(ok: bool) -> object:
        def command(checkout: Path) -> Sequence[str]:
            argv = ["true" if ok else "false"]
            commands.append(argv)
            return argv

        return command

    old = repos.head()
    unlocked = repos.push({"flow.py": "VALUE = 'new'\n"})  # the lock file untouched
    assert updater(repos.worker, environment_sync=installs(False)).poll(idle) == unlocked
    assert commands == [["false"]]  # asked, but not run: the lock did not change

    locked = repos.push({"uv.lock": "version = 2\n"})
    assert updater(repos.worker, environment_sync=installs(False)).poll(idle) is None
    assert repos.head() == unlocked  # back on the commit it had
    [problem] = warnings_of(caplog)
    assert "locked environment did not install" in problem
    assert updater(repos.worker, environment_sync=installs(True)).poll(idle) == locked
    assert repos.head() == locked != old
