"""The crash watch's rule: automatic restarts are counted in a sliding window; one too many,
or supervisord giving up (FATAL), stops the program once and raises one alert; a start by
hand ends the crash loop, and the program running again resolves it."""

from __future__ import annotations

from pathlib import Path

from automates.alerts.outbox import Alert
from automates.platform.crash_watch import CrashLoopRule, CrashWatch, read_records
from automates.registry.alert_kinds import AlertKind


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Store:
    """The outbox as the crash watch sees it: it takes an alert, or its database is down."""

    def __init__(self, up: bool) -> None:
        self.up = up
        self.written: list[Alert] = []

    def write(self, alert: Alert) -> bool:
        if self.up:
            self.written.append(alert)
        return self.up


def watch(tmp_path: Path, store: Store | None = None) -> tuple[CrashWatch, list[str], list[Alert]]:
    stopped: list[str] = []
    store = store or Store(up=True)
    crash_watch = CrashWatch(
        run_dir=tmp_path,
        rule=CrashLoopRule(max_restarts=3, window_seconds=600),
        stop=stopped.append,
        alert=store.write,
        clock=Clock(),
    )
    return crash_watch, stopped, store.written


def restart(crash_watch: CrashWatch, name: str = "worker-local") -> None:
    crash_watch.on_event("PROCESS_STATE_EXITED", {"processname": name, "from_state": "RUNNING"})
    crash_watch.on_event("PROCESS_STATE_STARTING", {"processname": name, "from_state": "EXITED"})


def test_restarts_within_the_window_are_counted_and_one_too_many_stops_it(tmp_path: Path) -> None:
    crash_watch, stopped, written = watch(tmp_path)
    for _ in range(3):
        restart(crash_watch)
    assert read_records(tmp_path)["worker-local"].restarts == 3
    assert stopped == [] and written == []
    restart(crash_watch)
    record = read_records(tmp_path)["worker-local"]
    assert record.restarts == 4 and record.crash_loop is not None
    assert "4 times within 600 s" in record.crash_loop
    assert stopped == ["worker-local"]
    [alert] = written
    assert alert.kind == AlertKind.COMPONENT_CRASH_LOOP and alert.subject == "worker-local"
    assert alert.row().condition == "component_crash_loop:worker-local"
    restart(crash_watch)  # a stop racing one more restart: no second alert, no second stop
    assert stopped == ["worker-local"] and len(written) == 1


def test_restarts_older_than_the_window_do_not_count(tmp_path: Path) -> None:
    crash_watch, stopped, _ = watch(tmp_path)
    clock = crash_watch.clock
    assert isinstance(clock, Clock)
    for _ in range(10):
        restart(crash_watch)
        clock.now += 250  # at most 3 restarts fall in any 600 s
    assert stopped == []
    assert read_records(tmp_path)["worker-local"].restarts == 10


def test_fatal_is_a_crash_loop_without_a_stop(tmp_path: Path) -> None:
    crash_watch, stopped, written = watch(tmp_path)
    crash_watch.on_event("PROCESS_STATE_FATAL", {"processname": "alerts", "from_state": "BACKOFF"})
    assert stopped == []  # supervisord gave up already
    assert [a.kind for a in written] == [AlertKind.COMPONENT_CRASH_LOOP]
    assert "could not start" in (read_records(tmp_path)["alerts"].crash_loop or "")


def test_a_start_by_hand_ends_the_loop_and_running_again_resolves_it(tmp_path: Path) -> None:
    crash_watch, _, written = watch(tmp_path)
    for _ in range(4):
        restart(crash_watch)
    by_hand = {"processname": "worker-local", "from_state": "STOPPED"}
    crash_watch.on_event("PROCESS_STATE_STARTING", by_hand)
    record = read_records(tmp_path)["worker-local"]
    assert record.crash_loop is None and record.recent == () and record.recovering
    running = {"processname": "worker-local", "from_state": "STARTING"}
    crash_watch.on_event("PROCESS_STATE_RUNNING", running)
    crash_watch.on_event("PROCESS_STATE_RUNNING", running)  # resolved once
    assert [a.kind for a in written] == [
        AlertKind.COMPONENT_CRASH_LOOP,
        AlertKind.COMPONENT_RECOVERED,
    ]
    assert not read_records(tmp_path)["worker-local"].recovering


def test_an_alert_the_store_cannot_take_yet_is_written_on_a_later_tick(tmp_path: Path) -> None:
    store = Store(up=False)
    crash_watch, stopped, written = watch(tmp_path, store)
    for _ in range(4):
        restart(crash_watch, "embedded-postgresql")
    assert stopped == ["embedded-postgresql"] and written == []
    crash_watch.on_event("TICK_60", {})
    assert written == []
    store.up = True
    crash_watch.on_event("TICK_60", {})
    assert [a.kind for a in written] == [AlertKind.COMPONENT_CRASH_LOOP]
    crash_watch.on_event("TICK_60", {})
    assert len(written) == 1
