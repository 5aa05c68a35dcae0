"""What each form of cron command becomes under the guard, or why it cannot yet."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from automates.crontab.commands import Context, Outcome, analyse, analyse_service
from automates.crontab.nets import restart_net
from automates.crontab.shell import ShellSyntaxError, split

BIN = "/usr/bin:/bin"
PY = shutil.which("python3", path=BIN)
CURL = shutil.which("curl", path=BIN)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    synedre = home / "synedre"
    synedre.mkdir(parents=True)
    for name, executable in [
        ("ac_cron_wrapper.py", True),
        ("ac_monitor.py", False),
        ("ac_backup.sh", True),
        ("plain.py", False),
        ("__init__.py", False),
    ]:
        path = synedre / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755 if executable else 0o644)
    return home


def context(home: Path, **variables: str) -> Context:
    return Context(
        home=home,
        path=BIN,
        project_root=home.parent / "checkout",
        variables=variables,
    )


# (command, outcome, argv with {home}, lock, name)
READY = [
    ("synedre/ac_backup.sh", ("{home}/synedre/ac_backup.sh",), None, "ac-backup"),
    (
        "{home}/synedre/ac_backup.sh --full",
        ("{home}/synedre/ac_backup.sh", "--full"),
        None,
        "ac-backup-full",
    ),
    ("~/synedre/ac_backup.sh", ("{home}/synedre/ac_backup.sh",), None, "ac-backup"),
    ("$HOME/synedre/ac_backup.sh", ("{home}/synedre/ac_backup.sh",), None, "ac-backup"),
    ("${ROOT}/ac_backup.sh", ("{home}/synedre/ac_backup.sh",), None, "ac-backup"),
    (
        "synedre/ac_backup.sh >> /var/log/b.log 2>&1",
        ("{home}/synedre/ac_backup.sh",),
        None,
        "ac-backup",
    ),
    (
        "synedre/ac_backup.sh > /dev/null 2>/dev/null",
        ("{home}/synedre/ac_backup.sh",),
        None,
        "ac-backup",
    ),
    ("synedre/ac_backup.sh &>/tmp/x", ("{home}/synedre/ac_backup.sh",), None, "ac-backup"),
    (
        "synedre/ac_backup.sh 'a b' \"c d\" e\\ f",
        ("{home}/synedre/ac_backup.sh", "a b", "c d", "e f"),
        None,
        "ac-backup-a-b-c-d-e-f",
    ),
    ("synedre/ac_backup.sh # nightly", ("{home}/synedre/ac_backup.sh",), None, "ac-backup"),
    (
        "synedre/ac_backup.sh '*.log' \"$\"",
        ("{home}/synedre/ac_backup.sh", "*.log", "$"),
        None,
        "ac-backup-log",
    ),
    (
        "flock -n /tmp/b.lock synedre/ac_backup.sh",
        ("{home}/synedre/ac_backup.sh",),
        "/tmp/b.lock",
        "ac-backup",
    ),
    ("python3 synedre/plain.py --x", (PY, "{home}/synedre/plain.py", "--x"), None, "plain-x"),
    ("python3 -u synedre/plain.py", (PY, "-u", "{home}/synedre/plain.py"), None, "plain"),
    (
        "python3 synedre/ac_cron_wrapper.py ac_monitor.py --quick",
        (PY, "{home}/synedre/ac_monitor.py", "--quick"),
        None,
        "ac-monitor-quick",
    ),
    (
        "synedre/ac_cron_wrapper.py ac_backup.sh",
        ("{home}/synedre/ac_backup.sh",),
        None,
        "ac-backup",
    ),
    (
        "curl -fsS http://127.0.0.1:3000/api/tick",
        (CURL, "-fsS", "http://127.0.0.1:3000/api/tick"),
        None,
        "http-127-0-0-1-3000-api-tick",
    ),
]


@pytest.mark.parametrize(("command", "argv", "lock", "name"), READY)
def test_commands_that_translate(
    home: Path, command: str, argv: tuple[str, ...], lock: str | None, name: str
) -> None:
    result = analyse(command.replace("{home}", str(home)), context(home, ROOT=f"{home}/synedre"))
    assert (result.outcome, result.reason) == (Outcome.READY, None)
    assert result.argv == tuple(a.format(home=home) for a in argv)
    assert (result.lock, result.name) == (lock, name)


@pytest.mark.parametrize(
    ("command", "note"),
    [
        ("synedre/ac_backup.sh >> /var/log/b.log 2>&1", "output went to /var/log/b.log"),
        ("python3 synedre/plain.py", "ran outside any wrapper"),
        ("python3 synedre/ac_cron_wrapper.py ac_monitor.py", "through the old wrapper"),
        ("flock -n /tmp/b.lock synedre/ac_backup.sh", "concurrency forbid"),
        ("curl -s http://127.0.0.1/x", "add --fail"),
    ],
)
def test_what_changes_is_said(home: Path, command: str, note: str) -> None:
    result = analyse(command, context(home))
    assert any(note in n for n in result.notes), result.notes


# (command, argv with {home}, reason fragment): what cron ran, with the missing path in it
BROKEN = [
    (
        "synedre/gone.sh --x",
        ("{home}/synedre/gone.sh", "--x"),
        "executable {home}/synedre/gone.sh does not exist",
    ),
    ("synedre/plain.py", ("{home}/synedre/plain.py",), "is not executable"),
    ("no-such-tool --x", ("no-such-tool", "--x"), "'no-such-tool' is not on cron's PATH"),
    (
        "python3 synedre/gone.py",
        (PY, "{home}/synedre/gone.py"),
        "script {home}/synedre/gone.py does not exist",
    ),
    (
        "python3 synedre/ac_cron_wrapper.py gone.py -v",
        (PY, "{home}/synedre/gone.py", "-v"),
        "gone.py, which does not exist",
    ),
    (
        "synedre/ac_cron_wrapper.py gone.sh",
        ("{home}/synedre/gone.sh",),
        "gone.sh, which does not exist",
    ),
    (
        "python3 -m nothing_here_at_all.mod",
        (PY, "-m", "nothing_here_at_all.mod"),
        "module nothing_here_at_all.mod is found neither",
    ),
    (
        "timeout 60 flock -n /tmp/l synedre/gone.sh",
        ("{home}/synedre/gone.sh",),
        "gone.sh does not exist",
    ),
]


@pytest.mark.parametrize(("command", "argv", "reason"), BROKEN)
def test_broken_commands_keep_what_cron_ran(
    home: Path, command: str, argv: tuple[str, ...], reason: str
) -> None:
    result = analyse(command, context(home))
    assert result.outcome is Outcome.BROKEN
    assert result.argv == tuple(a.format(home=home) for a in argv)
    assert result.reason is not None and reason.format(home=home) in result.reason


# (command, outcome, reason fragment)
NOT_READY = [
    ("python3 -m synedre.ac_monitor", Outcome.DECISION, "PYTHONPATH"),
    ("python3 -c 'print(1)'", Outcome.DECISION, "runs inline code"),
    ("cd /tmp && ./x.sh", Outcome.DECISION, "shell construct (&&)"),
    ("a | b", Outcome.DECISION, "shell construct (|)"),
    ("a; b", Outcome.DECISION, "shell construct (;)"),
    ("synedre/ac_backup.sh &", Outcome.DECISION, "in the background"),
    ("pgrep -f worker || nohup python3 w.py &", Outcome.DECISION, "a restart net"),
    ("synedre/ac_backup.sh < /etc/hosts", Outcome.DECISION, "reads its input"),
    ("synedre/ac_backup.sh $(date +%s)", Outcome.DECISION, "$(...) command substitution"),
    ("synedre/ac_backup.sh `date`", Outcome.DECISION, "backquoted"),
    ("synedre/ac_backup.sh /var/log/*.log", Outcome.DECISION, "glob character '*'"),
    ("$UNSET_TOOL --x", Outcome.DECISION, "$UNSET_TOOL, which the crontab does not set"),
    ("LANG=C synedre/ac_backup.sh", Outcome.DECISION, "sets LANG for itself"),
    ("flock /tmp/l synedre/ac_backup.sh", Outcome.DECISION, "flock without -n waits"),
    ("flock -n /tmp/l -c 'a && b'", Outcome.DECISION, "shell string (-c)"),
    ("flock -w 5 /tmp/l synedre/ac_backup.sh", Outcome.DECISION, "flock is given -w"),
    ("6 seven", Outcome.DECISION, "sixth time field"),
    (
        "python3 synedre/ac_cron_wrapper.py --timeout 600 x.py",
        Outcome.DECISION,
        "old wrapper is given '--timeout'",
    ),
    ("synedre/ac_backup.sh 3>/tmp/x", Outcome.DECISION, "descriptor 3"),
    ("a 'unclosed", Outcome.UNPARSABLE, "single quote is not closed"),
    ('a "unclosed', Outcome.UNPARSABLE, "double quote is not closed"),
    ("a >", Outcome.UNPARSABLE, "> has no target"),
    ("> /tmp/x", Outcome.UNPARSABLE, "nothing to run"),
]


@pytest.mark.parametrize(("command", "outcome", "reason"), NOT_READY)
def test_commands_that_do_not_translate(
    home: Path, command: str, outcome: Outcome, reason: str
) -> None:
    result = analyse(command, context(home))
    assert result.outcome is outcome
    assert result.argv == ()
    assert result.reason is not None and reason.format(home=home) in result.reason


def test_a_module_in_the_checkout_runs_from_there(home: Path) -> None:
    checkout = home.parent / "checkout"
    (checkout / "jobs").mkdir(parents=True)
    (checkout / "jobs" / "sweep.py").write_text("")
    result = analyse("python3 -m jobs.sweep --all", context(home))
    assert (result.outcome, result.argv) == (Outcome.READY, (PY, "-m", "jobs.sweep", "--all"))
    assert result.name == "jobs-sweep-all"


def test_names_do_not_depend_on_where_home_is(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(home, other)
    one = analyse("~/synedre/ac_backup.sh --full", context(home))
    two = analyse("~/synedre/ac_backup.sh --full", context(other))
    assert one.argv != two.argv
    assert one.name == two.name == "ac-backup-full"


def test_a_long_name_is_cut_with_a_digest(home: Path) -> None:
    args = " ".join(f"arg{i}" for i in range(40))
    one = analyse(f"synedre/ac_backup.sh {args}", context(home))
    two = analyse(f"synedre/ac_backup.sh {args} more", context(home))
    assert len(one.name) <= 63 and len(two.name) <= 63
    assert one.name != two.name


def test_shell_split_marks_fd_redirections_only_when_unquoted() -> None:
    [_word, redirect, _target] = split("a 2>/tmp/x").tokens
    assert (redirect.operator, redirect.fd) == (">", "2")
    quoted = split("a '2'>/tmp/x").tokens
    assert quoted[1].literal == "2" and quoted[2].fd is None


def test_shell_split_refuses_unclosed_backquotes() -> None:
    with pytest.raises(ShellSyntaxError):
        split("a `date")


# (command, argv with {home}, timeout_seconds, lock, name)
TIMEOUTS = [
    ("timeout 60 synedre/ac_backup.sh", ("{home}/synedre/ac_backup.sh",), 60, None, "ac-backup"),
    (
        "timeout 5m flock -n /tmp/b.lock synedre/ac_backup.sh --full",
        ("{home}/synedre/ac_backup.sh", "--full"),
        300,
        "/tmp/b.lock",
        "ac-backup-full",
    ),
    (
        "flock -n /tmp/b.lock timeout 90s synedre/ac_backup.sh",
        ("{home}/synedre/ac_backup.sh",),
        90,
        "/tmp/b.lock",
        "ac-backup",
    ),
    (
        "timeout -k 10 --signal=TERM --foreground 30m synedre/ac_backup.sh",
        ("{home}/synedre/ac_backup.sh",),
        1800,
        None,
        "ac-backup",
    ),
    (
        "timeout -s SIGTERM 1 python3 synedre/plain.py",
        (PY, "{home}/synedre/plain.py"),
        1,
        None,
        "plain",
    ),
]


@pytest.mark.parametrize(("command", "argv", "timeout", "lock", "name"), TIMEOUTS)
def test_timeout_becomes_the_declared_timeout(
    home: Path, command: str, argv: tuple[str, ...], timeout: int, lock: str | None, name: str
) -> None:
    result = analyse(command, context(home))
    assert (result.outcome, result.reason) == (Outcome.READY, None)
    assert result.argv == tuple(a.format(home=home) for a in argv)
    assert (result.timeout, result.lock, result.name) == (timeout, lock, name)
    assert any(f"timeout_seconds: {timeout}" in note for note in result.notes)


@pytest.mark.parametrize(
    ("command", "outcome", "reason"),
    [
        ("timeout 2h synedre/ac_backup.sh", Outcome.DECISION, "is 7200 s, and a run under"),
        ("timeout 0 synedre/ac_backup.sh", Outcome.DECISION, "disables the timeout"),
        ("timeout 1.5 synedre/ac_backup.sh", Outcome.DECISION, "not whole seconds"),
        ("timeout -s KILL 60 synedre/ac_backup.sh", Outcome.DECISION, "sends SIGKILL"),
        ("timeout --preserve-status 9 synedre/ac_backup.sh", Outcome.DECISION, "--preserve-st"),
        ("timeout soon synedre/ac_backup.sh", Outcome.DECISION, "'soon' is not a duration"),
        ("timeout 60", Outcome.UNPARSABLE, "timeout names no command"),
    ],
)
def test_timeouts_the_guard_cannot_take_are_questions(
    home: Path, command: str, outcome: Outcome, reason: str
) -> None:
    result = analyse(command, context(home))
    assert result.outcome is outcome and result.timeout is None
    assert result.reason is not None and reason in result.reason


def test_a_module_installed_for_the_interpreter_or_on_the_crontabs_pythonpath_runs(
    home: Path,
) -> None:
    installed = analyse("python3 -m json.tool --help", context(home))
    assert (installed.outcome, installed.argv) == (
        Outcome.READY,
        (PY, "-m", "json.tool", "--help"),
    )
    (home / "lib" / "tasks").mkdir(parents=True)
    (home / "lib" / "tasks" / "sweep.py").write_text("")
    on_path = analyse("python3 -m tasks.sweep", context(home, PYTHONPATH="lib"))
    assert on_path.outcome is Outcome.READY


@pytest.mark.parametrize(
    ("command", "notes"),
    [
        ("nohup synedre/ac_backup.sh >> /tmp/loop.log 2>&1 &", ("nohup dropped", "background")),
        ("synedre/ac_backup.sh &", ("background",)),
        ("synedre/ac_backup.sh", ()),
    ],
)
def test_a_services_command_drops_nohup_and_the_background(
    home: Path, command: str, notes: tuple[str, ...]
) -> None:
    result = analyse_service(command, context(home))
    assert (result.outcome, result.argv) == (Outcome.READY, (f"{home}/synedre/ac_backup.sh",))
    assert result.name == "ac-backup"
    for note in notes:
        assert any(note in n for n in result.notes), result.notes


@pytest.mark.parametrize(
    ("command", "watches"),
    [
        ("pgrep -f ac_backup.sh > /dev/null || nohup synedre/ac_backup.sh >> /tmp/l 2>&1 &", True),
        ("pgrep -f 'synedre/ac_[b]ackup' || synedre/ac_backup.sh", True),
        ("/usr/bin/pgrep -fx '{home}/synedre/ac_backup.sh' || synedre/ac_backup.sh", True),
        ("pgrep ac_backup || synedre/ac_backup.sh", True),  # the process name
        ("pgrep -u op ac_backup || synedre/ac_backup.sh", True),
        ("pidof -x ac_backup.sh || synedre/ac_backup.sh", True),
        ("pgrep -f other_loop || synedre/ac_backup.sh", False),
        ("pgrep synedre/ac_backup || synedre/ac_backup.sh", False),  # names have no path
        ("pgrep -f '[' || synedre/ac_backup.sh", False),
    ],
)
def test_a_restart_net_names_what_it_watches_and_starts(
    home: Path, command: str, watches: bool
) -> None:
    net = restart_net(command.replace("{home}", str(home)), context(home))
    assert net is not None
    assert net.start.argv == (f"{home}/synedre/ac_backup.sh",)
    assert net.watches_start is watches


@pytest.mark.parametrize(
    "command",
    ["synedre/ac_backup.sh", "test -f /tmp/x || synedre/ac_backup.sh", "a && pgrep x || b"],
)
def test_other_commands_are_no_restart_net(home: Path, command: str) -> None:
    assert restart_net(command, context(home)) is None
