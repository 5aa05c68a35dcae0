"""The crash watch: supervisord's event listener that counts restarts and ends crash loops.

supervisord restarts a program that exits, and gives up (FATAL) on one that keeps dying while
it starts; a program that runs for a while and then dies would be restarted forever. The
crash watch counts every automatic restart; a program restarted more than
AUTOMATES_CRASH_LOOP_RESTARTS times within AUTOMATES_CRASH_LOOP_WINDOW_SECONDS, or one that
went FATAL, is stopped and marked in a crash loop, and a `component_crash_loop` alert is
raised (delivered by the routes, decision 0033). `automates up` starting it again ends the
loop (`component_recovered` once it runs).

What it counts is written to `run/supervision.json` (read by `automates status`): restarts
since the layer came up, the recent ones, and the crash loop's reason. An alert that cannot be
written yet (the store's database is the process that is down) is retried every minute.

Run by supervisord as `python -m automates.platform.crash_watch`: stdout is the event
protocol's channel, so everything it says goes to stderr (its log).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from automates.alerts import catalog
from automates.alerts.outbox import Alert
from automates.platform.supervision import LISTENER
from automates.process_group import terminate_groups

log = logging.getLogger("automates.crash_watch")
STATE_FILE = "supervision.json"
# supervisord restarted the program by itself: from these states to STARTING.
_AUTOMATIC = frozenset({"EXITED", "BACKOFF"})
# Someone started it (`automates up`): from these states to STARTING.
_BY_HAND = frozenset({"STOPPED", "FATAL"})


@dataclass(frozen=True)
class Record:
    """What the crash watch knows of one program."""

    restarts: int = 0  # automatic restarts since the layer came up
    recent: tuple[float, ...] = ()  # epoch seconds of the restarts inside the window
    crash_loop: str | None = None  # why it was stopped, while it stays stopped
    recovering: bool = False  # started by hand after a crash loop, not yet running
    # The running process and its start time (psutil's), so that `up` can stop it should
    # supervisord die and leave it orphaned.
    pid: int | None = None
    pid_started: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "restarts": self.restarts,
            "recent": list(self.recent),
            "crash_loop": self.crash_loop,
            "recovering": self.recovering,
            "pid": self.pid,
            "pid_started": self.pid_started,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(
            restarts=int(data.get("restarts", 0)),
            recent=tuple(float(t) for t in data.get("recent", ())),
            crash_loop=data.get("crash_loop"),
            recovering=bool(data.get("recovering", False)),
            pid=data.get("pid"),
            pid_started=data.get("pid_started"),
        )


@dataclass(frozen=True)
class CrashLoopRule:
    max_restarts: int
    window_seconds: float

    def restarted(self, record: Record, now: float) -> tuple[Record, str | None]:
        """The record after one automatic restart, and the crash loop's reason if this
        restart is one too many."""
        recent = (*(t for t in record.recent if now - t <= self.window_seconds), now)
        record = replace(record, restarts=record.restarts + 1, recent=recent)
        if len(recent) <= self.max_restarts:
            return record, None
        return record, (
            f"was restarted {len(recent)} times within {self.window_seconds:g} s "
            f"(more than {self.max_restarts})"
        )


def started_at(pid: int | None) -> float | None:
    """When the process began (psutil's create time): a pid plus this names one process."""
    if pid is None:
        return None
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def stop_orphans(run_dir: Path, grace_seconds: float = 15.0) -> list[str]:
    """Stop the process groups of programs a dead supervisord left running (each checked by
    its pid and start time, so a reused pid is never hit); the names of those stopped."""
    found = {}
    for name, record in read_records(run_dir).items():
        if record.pid is not None and started_at(record.pid) == record.pid_started:
            found[name] = record.pid
    terminate_groups(found.values(), grace_seconds)  # bare pids: never reaped here
    return sorted(found)


def read_records(run_dir: Path) -> dict[str, Record]:
    try:
        data = json.loads((run_dir / STATE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {name: Record.from_dict(entry) for name, entry in data.items()}


def write_records(run_dir: Path, records: dict[str, Record]) -> None:
    partial = run_dir / (STATE_FILE + ".partial")
    partial.write_text(json.dumps({n: r.as_dict() for n, r in sorted(records.items())}))
    partial.replace(run_dir / STATE_FILE)


@dataclass
class CrashWatch:
    """The listener's state machine, apart from the protocol: one call per event."""

    run_dir: Path
    rule: CrashLoopRule
    stop: Callable[[str], None]  # asks supervisord to stop a program (not waiting)
    alert: Callable[[Alert], bool]  # writes an alert to the outbox; False if it could not
    clock: Callable[[], float] = time.time
    pending: list[Alert] = field(default_factory=list)

    def on_event(self, event: str, headers: dict[str, str]) -> None:
        if event == "TICK_60":
            self._flush()
            return
        name = headers.get("processname", "")
        if not event.startswith("PROCESS_STATE_") or not name or name == LISTENER:
            return
        records = read_records(self.run_dir)
        record = records.get(name, Record())
        state, before = event.removeprefix("PROCESS_STATE_"), headers.get("from_state", "")
        if state == "STARTING" and before in _AUTOMATIC:
            record, reason = self.rule.restarted(record, self.clock())
            if reason is not None and record.crash_loop is None:
                record = replace(record, crash_loop=reason)
                self._crash_loop(name, reason)
        elif state == "FATAL" and record.crash_loop is None:
            reason = "could not start: it kept exiting within seconds of each start"
            record = replace(record, crash_loop=reason)
            self._crash_loop(name, reason, stopped=True)
        elif state == "STARTING" and before in _BY_HAND:
            record = replace(record, recent=(), recovering=record.crash_loop is not None)
            record = replace(record, crash_loop=None)
        elif state == "RUNNING":
            pid = int(headers.get("pid", 0)) or None
            record = replace(record, pid=pid, pid_started=started_at(pid))
            if record.recovering:
                record = replace(record, recovering=False)
                self._send(catalog.component_recovered(name))
        else:
            return
        records[name] = record
        write_records(self.run_dir, records)

    def _crash_loop(self, name: str, reason: str, stopped: bool = False) -> None:
        log.error("%s %s: stopping it", name, reason)
        if not stopped:
            self.stop(name)
        log_file = str(self.run_dir / f"{name}.log")
        self._send(catalog.component_crash_loop(name, reason, log_file))

    def _send(self, alert: Alert) -> None:
        self.pending.append(alert)
        self._flush()

    def _flush(self) -> None:
        while self.pending and self.alert(self.pending[0]):
            self.pending.pop(0)


def _store_writer() -> Callable[[Alert], bool]:
    """Writes alerts to the store; False (logged) while its database cannot be reached."""
    from sqlalchemy.engine import Engine

    from automates.alerts.outbox import raise_alert
    from automates.settings import Settings
    from automates.store.database import database_url
    from automates.store.engine import make_engine, transaction

    engine: list[Engine] = []

    def write(alert: Alert) -> bool:
        try:
            if not engine:
                engine.append(make_engine(database_url(Settings())))
            with transaction(engine[0]) as connection:
                raise_alert(connection, alert)
            return True
        except Exception as error:  # the database may be the process that is down
            log.warning("alert %r not written yet (%s): retried in a minute", alert.title, error)
            if engine:
                engine.pop().dispose()  # the embedded database's socket may move
            return False

    return write


def _stopper() -> Callable[[str], None]:
    from supervisor import childutils

    rpc = childutils.getRPCInterface(os.environ)

    def stop(name: str) -> None:
        try:
            rpc.supervisor.stopProcess(name, False)  # not waiting: supervisord awaits us
        except xmlrpc.client.Fault as fault:
            log.warning("could not stop %s: %s", name, fault.faultString)

    return stop


def main() -> None:
    from supervisor import childutils

    from automates.envfiles import load_env_files
    from automates.settings import Settings, env_file_paths

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
    load_env_files(env_file_paths())
    settings = Settings()
    watch = CrashWatch(
        run_dir=settings.data_path / "run",
        rule=CrashLoopRule(settings.crash_loop.restarts, settings.crash_loop.window_seconds),
        stop=_stopper(),
        alert=_store_writer(),
    )
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        try:
            event_headers = childutils.get_headers(payload.split("\n", 1)[0])
            watch.on_event(headers["eventname"], event_headers)
        except Exception:  # one bad event must not end the watch
            log.exception("event %s not handled", headers.get("eventname"))
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main()
