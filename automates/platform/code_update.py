"""A worker's checkout brought up to its upstream branch, between runs only.

A worker with `AUTOMATES_WORKER_UPDATE_SECONDS` set asks `CheckoutUpdater.poll` before each
fetch of runs (automates/platform/process_worker.py, `CodeUpdateMixin`). At most once per
interval it fetches the checkout's upstream (`git fetch`: the network part, which leaves the
files alone). When the upstream is ahead and the worker has no run in flight, it fast-forwards
(`git merge --ff-only`: local, milliseconds) and answers the new commit; the worker then
re-executes itself, so its own code is new too. Together that is `git pull --ff-only`, split so
that the files change only while nothing runs from them. A change of `uv.lock` re-syncs the
locked environment first (`uv sync --frozen`, as `scripts/bootstrap.sh` does); if that fails,
the checkout goes back to the commit it had. The checkout's own packages are then compiled to
bytecode, as bootstrap does (docs/decisions/0056-bytecode-compiled-at-install.md), so the
restarted worker and its runs do not each compile the changed modules at import.

Whatever fails (git missing, not a checkout, no upstream, a diverged branch, local changes in
the way, the network) is logged once per distinct problem, and the worker carries on with the
code it has (docs/decisions/0037-workers-run-their-own-checkout.md).
"""

from __future__ import annotations

import compileall
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# A fetch that hangs (an unreachable remote) holds the worker's poll loop: bounded.
GIT_TIMEOUT_SECONDS = 120.0
ENVIRONMENT_TIMEOUT_SECONDS = 900.0
LOCK_FILE = "uv.lock"
# The checkout's own packages, compiled after an update as `scripts/bootstrap.sh` compiles them.
CHECKOUT_PACKAGES = ("automates", "flows", "tasks", "blocks", "workers")


class GitFailed(RuntimeError):
    """A git command that did not do its job; the message says why, in git's words."""


def git(checkout: Path, *args: str, timeout: float = GIT_TIMEOUT_SECONDS) -> str:
    """Run `git ARGS` in `checkout` without ever prompting; its output, stripped."""
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",  # no credential prompt: a worker has no terminal
        "LC_ALL": "C",  # git's messages in the log, in one language
    }
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    try:
        done = subprocess.run(
            ["git", "-C", str(checkout), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise GitFailed("git is not installed on this host") from None
    except subprocess.TimeoutExpired:
        raise GitFailed(f"`git {args[0]}` took more than {timeout:.0f} s") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise GitFailed(f"`git {' '.join(args)}` failed: {' '.join(said) or 'no message'}")
    return done.stdout.strip()


def is_ancestor(checkout: Path, older: str, newer: str) -> bool:
    """Whether commit `older` is `newer` or one of its ancestors."""
    try:
        git(checkout, "merge-base", "--is-ancestor", older, newer)
    except GitFailed:
        return False
    return True


def default_environment_sync(checkout: Path) -> Sequence[str] | None:
    """The command that installs the checkout's locked environment, if it has one: uv's."""
    uv = shutil.which("uv")
    if uv is None or not (checkout / LOCK_FILE).is_file():
        return None
    return [uv, "sync", "--frozen", "--project", str(checkout), "--quiet", "--compile-bytecode"]


class CheckoutUpdater:
    """Keeps one checkout on its upstream branch; asked by its worker between fetches of runs."""

    def __init__(
        self,
        checkout: Path,
        every_seconds: float,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
        *,
        clock: Callable[[], float] = time.monotonic,
        environment_sync: Callable[[Path], Sequence[str] | None] = default_environment_sync,
    ) -> None:
        self.checkout = checkout
        self.every_seconds = every_seconds
        self._logger = logger
        self._clock = clock
        self._environment_sync = environment_sync
        self._last_fetch: float | None = None
        self._upstream: str | None = None  # the upstream commit to move to, once idle
        self._problem_said: str | None = None  # the problem last logged (each said once)
        self._wait_said: str | None = None  # the commit whose wait was last logged

    def poll(self, runs_in_flight: Callable[[], int]) -> str | None:
        """Fetch when due; fast-forward when the upstream is ahead and no run is in flight.
        The new HEAD when it moved (the worker must then restart), else None."""
        now = self._clock()
        if self._last_fetch is None or now - self._last_fetch >= self.every_seconds:
            self._last_fetch = now
            self._upstream = self._fetch()
        if self._upstream is None:
            return None
        in_flight = runs_in_flight()
        if in_flight:
            if self._wait_said != self._upstream:
                self._wait_said = self._upstream
                self._logger.info(
                    "update of %s to %s waits: %d run(s) in flight",
                    self.checkout,
                    self._upstream[:12],
                    in_flight,
                )
            return None
        target, self._upstream = self._upstream, None  # one attempt per fetch
        return self._fast_forward(target)

    def _fetch(self) -> str | None:
        """The upstream's commit when HEAD can fast-forward to it; None otherwise."""
        try:
            git(self.checkout, "fetch", "--quiet")
            head = git(self.checkout, "rev-parse", "HEAD")
            upstream = git(self.checkout, "rev-parse", "--verify", "@{upstream}")
        except GitFailed as failed:
            self._problem(f"cannot update {self.checkout} from its upstream: {failed}")
            return None
        if upstream == head or is_ancestor(self.checkout, upstream, head):
            self._fine()  # up to date (or ahead, with commits of its own)
            return None
        if not is_ancestor(self.checkout, head, upstream):
            self._problem(
                f"cannot update {self.checkout}: its branch and its upstream have diverged "
                f"(HEAD {head[:12]}, upstream {upstream[:12]}); a worker only fast-forwards"
            )
            return None
        return upstream

    def _fast_forward(self, target: str) -> str | None:
        try:
            before = git(self.checkout, "rev-parse", "HEAD")
            git(self.checkout, "merge", "--ff-only", "--quiet", target)
            after = git(self.checkout, "rev-parse", "HEAD")
        except GitFailed as failed:
            self._problem(f"cannot fast-forward {self.checkout} to {target[:12]}: {failed}")
            return None
        if after == before:
            return None
        if not self._environment_follows(before, after):
            return None
        self._compile_checkout()
        self._logger.info(
            "updated %s from %s to %s: restarting on the new code",
            self.checkout,
            before[:12],
            after[:12],
        )
        return after

    def _environment_follows(self, before: str, after: str) -> bool:
        """Re-sync the locked environment when the lock file changed; on failure, back to
        `before` (the new code may need what did not install)."""
        command = self._environment_sync(self.checkout)
        if command is None:
            return True
        try:
            git(self.checkout, "diff", "--quiet", before, after, "--", LOCK_FILE)
            return True  # the lock did not change
        except GitFailed:
            pass
        try:
            subprocess.run(
                list(command),
                cwd=self.checkout,
                env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
                capture_output=True,
                text=True,
                timeout=ENVIRONMENT_TIMEOUT_SECONDS,
                check=True,
            )
            return True
        except (OSError, subprocess.SubprocessError) as failed:
            said = getattr(failed, "stderr", None) or str(failed)
            reason = " ".join(str(said).split())[-500:]
        try:
            git(self.checkout, "reset", "--keep", before)
        except GitFailed as failed:
            reason += f"; and going back failed: {failed}"
        self._problem(
            f"cannot update {self.checkout} to {after[:12]}: its locked environment did not "
            f"install ({reason}); staying on {before[:12]}"
        )
        return False

    def _compile_checkout(self) -> None:
        """Write the bytecode of the checkout's packages (current files are skipped). Not
        fatal: a module whose bytecode could not be written (a read-only checkout, a syntax
        error) compiles at import, where an error is reported with its run."""
        for name in CHECKOUT_PACKAGES:
            package = self.checkout / name
            if package.is_dir() and not compileall.compile_dir(package, quiet=2):
                self._logger.info("the bytecode of %s was not all written", package)

    def _problem(self, message: str) -> None:
        if message != self._problem_said:
            self._problem_said = message
            self._logger.warning("%s; the worker carries on with the code it has", message)

    def _fine(self) -> None:
        if self._problem_said is not None:
            self._problem_said = None
            self._logger.info("%s is on its upstream again", self.checkout)
