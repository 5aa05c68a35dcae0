"""The run launcher: `python -m automates.platform.run_launcher --fd N`, one per fast worker.

A fresh Python that imports Prefect, its engine, the guard and the modules the checkout's flows
and tasks import (about 4 CPU-seconds on this machine; the operator's own files are read for
their imports, never run here), then waits. For each flow run the worker hands it, it
forks one child, which takes the run's environment and working folder and runs the run's
engine command (`python -m automates.guard.engine`) as if it had been started fresh: the
import cost is paid once, ahead of every run, and each run still has its own process (its
pid, its environment, its memory, killable alone). Why a fork of this process is safe and what
it changes: docs/decisions/0050-fast-process-worker.md.

The protocol, one JSON object per line over the socket the worker passes as `--fd`:
  launcher -> worker  {"ready": pid}                       imports done
  worker -> launcher  {"id": n, "argv": [...], "env": {...}, "cwd": "...", "quiet": bool}
  launcher -> worker  {"id": n, "pid": pid}                 the run's process exists
                      {"id": n, "refused": "why"}           start it the ordinary way
                      (with "stale": true, its imports are older than the project's files)
  launcher -> worker  {"id": n, "exit": code}               the run's process ended
The launcher exits when the worker's end of the socket closes; children it started run on.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from automates.platform.settings_inputs import SettingsInputs

# Imported before any run arrives: what every run's engine needs. The checkout's own packages
# are added by `_preload` (they are in the checkout, not installed).
PRELOADED = (
    "prefect.flow_engine",
    "prefect._internal.control_listener",
    "automates.server.prefect_patches",
    "automates.guard.engine",
    "automates.guard.runner",
    # What a run's process imported after the fork before this list grew (Python's own
    # `sys.modules` before and after, in tests/integration/test_fast_worker.py): the pull
    # steps, the runner's modules they bring, the store's driver and block, pydantic.v1.
    "prefect.deployments.steps.pull",
    "prefect.deployments.steps.utility",
    "prefect.runner",
    "prefect._internal.observers",
    "anyio._backends._asyncio",
    "psycopg",
    "pydantic.v1",
    "packaging.requirements",
    "packaging.tags",
    "encodings.idna",
    "blocks.store",
)
# The operator's code: never imported here (its top level may do anything), only read for the
# modules it imports; a run imports it in its own process, as a fresh one would.
CHECKOUT_PACKAGES = ("flows", "tasks")


def imported_by_checkout(root: Path) -> set[str]:
    """The modules the checkout's flows and tasks import by absolute name, except their own:
    read from their import statements, not by running them."""
    names: set[str] = set()
    for package in CHECKOUT_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            try:
                tree = ast.parse(path.read_bytes(), filename=str(path))
            except (OSError, SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
    return {name for name in names if name.split(".", 1)[0] not in CHECKOUT_PACKAGES}


class Preloaded:
    """What the launcher imported, and when each of the project's files last changed."""

    def __init__(self, root: Path) -> None:
        self.failed: list[str] = []
        self.settings_inputs: SettingsInputs | None = None
        for name in (*PRELOADED, *sorted(imported_by_checkout(root))):
            try:
                importlib.import_module(name)
            except Exception as failed:  # the run that needs it reports it, in its own process
                self.failed.append(f"{name}: {type(failed).__name__}")
        self.stamps = self._stamps()

    def prepare(self) -> None:
        """Build ahead what each run's process would otherwise build for itself: Prefect's
        workarounds applied and the API's TLS context built (automates/server/prefect_patches.py;
        a run's engine builds six clients, each ~20 ms for its context), the models' validators
        (`_complete_models`), and Prefect's settings built again once their inputs are noted
        (settings_inputs.py)."""
        try:
            from automates.server.prefect_patches import api_tls_context, apply_all

            apply_all()
            api_tls_context()
        except Exception as failed:  # each run's process builds its own, as a fresh one does
            self.failed.append(f"prefect_patches: {type(failed).__name__}")
        _complete_models()
        self.settings_inputs = _settings_built_now()

    def settings_current_for(self, environ: dict[str, str], folder: Path) -> bool:
        """Whether this process's Prefect settings are the ones `environ` in `folder` gives."""
        noted = self.settings_inputs
        return noted is not None and noted.hold_for(environ, folder)

    def _stamps(self) -> dict[str, int]:
        """Every imported file of the project's own code (anything not installed with
        Python or in its environment), with its modification time."""
        installed = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
        stamps: dict[str, int] = {}
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if path and not path.startswith(installed):
                try:
                    stamps[path] = os.stat(path).st_mtime_ns
                except OSError:
                    stamps[path] = -1
        return stamps

    def stale(self) -> str | None:
        """The first preloaded file of the project that changed since it was imported: a run
        started from here would run the old code, which a fresh process would not."""
        for path, stamp in self.stamps.items():
            try:
                now = os.stat(path).st_mtime_ns
            except OSError:
                now = -1
            if now != stamp:
                return path
        return None


def _complete_models() -> None:
    """Complete every pydantic model imported so far. Prefect declares most of its API's
    models with names resolved later (its flow run, deployment, work pool, event ...); pydantic
    builds each one's validator the first time it is used, and so every run's process built the
    same few again (some 20 ms of CPU per run on this machine, read_flow_run's first
    among them). Built here, once, the children inherit them with the rest of the memory."""
    from pydantic import BaseModel

    pending: list[type[BaseModel]] = [BaseModel]
    while pending:
        for model in pending.pop().__subclasses__():
            pending.append(model)
            if model.__pydantic_complete__:
                continue
            # A model whose names do not resolve yet stays as it was: it builds on first use,
            # as before.
            with contextlib.suppress(Exception):
                model.model_rebuild(raise_errors=False)


def _settings_built_now() -> SettingsInputs | None:
    """Note what Prefect's settings are built from, then build them: a file changed after the
    note differs at the fork, so a run never keeps settings older than its inputs."""
    try:
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        profiles = get_current_settings().profiles_path
        inputs = SettingsInputs.of(os.environ, Path.cwd(), profiles)
        refresh_global_settings_context()
    except Exception:  # every run's process builds its own
        return None
    return inputs if get_current_settings().profiles_path == profiles else None


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _threads() -> int:
    """This process's threads as the kernel counts them (Python's and any library's)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def serve(sock: socket.socket, preloaded: Preloaded) -> dict[str, Any] | None:
    """Launch runs until the worker goes away (returns None); in each forked child, return
    the request that child is to run."""
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, None)
    children: dict[int, tuple[int, int]] = {}  # pidfd -> (request id, pid)
    buffer = b""
    while True:
        for key, _ in selector.select():
            if key.data is not None:  # a child's pidfd: it ended
                request_id, pid = children.pop(key.fd)
                selector.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                _send(sock, {"id": request_id, "exit": os.waitstatus_to_exitcode(status)})
                continue
            chunk = sock.recv(1 << 16)
            if not chunk:
                selector.close()
                return None
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                refused = _refusal(preloaded)
                if refused is not None:
                    _send(sock, {"id": request["id"], **refused})
                    continue
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    for pidfd in children:
                        os.close(pidfd)
                    sock.close()
                    return request
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (request["id"], pid)
                selector.register(pidfd, selectors.EVENT_READ, pid)
                _send(sock, {"id": request["id"], "pid": pid})


def _refusal(preloaded: Preloaded) -> dict[str, Any] | None:
    """Why this launcher cannot fork a run now (`stale`: never again, its imports are old)."""
    # A fork copies only the calling thread: a lock another thread held stays held forever
    # in the child. This process starts none; should an import ever start one, runs go the
    # ordinary way instead.
    threads = _threads()
    if threads != 1:
        return {"refused": f"the launcher has {threads} threads; a fork is only safe from one"}
    changed = preloaded.stale()
    if changed is not None:
        return {"refused": f"{changed} changed since the launcher imported it", "stale": True}
    return None


def become_run(request: dict[str, Any], root: Path, preloaded: Preloaded) -> None:
    """In the forked child: take the run's environment, folder and command line, then run
    the command's module as `python -m` would."""
    for number in (signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if request.get("quiet"):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update(request["env"])
    cwd = Path(request["cwd"]).resolve()
    os.chdir(cwd)
    sys.path[0] = str(cwd)  # `python -m` puts the folder it starts in first
    if cwd != root:
        _forget_checkout_packages()
    if not preloaded.settings_current_for(request["env"], cwd):
        _refresh_prefect_settings(before)
    argv: list[str] = request["argv"]
    module = argv[argv.index("-m") + 1]
    sys.argv = [module, *argv[argv.index("-m") + 2 :]]
    # runpy warns when the module it runs as `__main__` was imported before; here the launcher
    # imported it (and Prefect's engine, which the guard's engine runs the same way) on purpose.
    warnings.filterwarnings(
        "ignore",
        message=r".* found in sys\.modules after import of package",
        category=RuntimeWarning,
    )
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _forget_checkout_packages() -> None:
    """A run started in another folder (a deployment that fetches its own code) imports the
    flows and tasks of that folder, as a fresh process would, not the launcher's."""
    for name in list(sys.modules):
        if name.split(".", 1)[0] in CHECKOUT_PACKAGES:
            del sys.modules[name]


def _refresh_prefect_settings(before: dict[str, str]) -> None:
    """Prefect read its settings from the launcher's environment at import; read them again
    from the run's (its logging too, when the run's logging settings differ)."""
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()
    logging_names = {name for name in (*before, *os.environ) if name.startswith("PREFECT_LOGGING_")}
    if any(before.get(name) != os.environ.get(name) for name in logging_names):
        from prefect.logging.configuration import setup_logging

        setup_logging(incremental=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="The worker's socket.")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="The checkout.")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    root = args.root.resolve()
    # Until a run takes over, a signal to the worker's process group ends the launcher
    # quietly; its children reset these.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    preloaded = Preloaded(root)
    preloaded.prepare()
    # Objects that exist now are never collected: a child's collector does not touch, and so
    # does not copy, the pages the launcher filled.
    gc.freeze()
    _send(sock, {"ready": os.getpid(), "failed": preloaded.failed})
    request = serve(sock, preloaded)
    if request is None:
        return
    become_run(request, root, preloaded)


if __name__ == "__main__":
    main()
