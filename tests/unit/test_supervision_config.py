"""The supervisord config `up` writes, read back by supervisord's own option parser."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from supervisor.datatypes import RestartUnconditionally
from supervisor.options import ServerOptions

from automates.errors import PlatformError
from automates.platform.supervision import LISTENER, Program, render_config, socket_path


def parsed(run_dir: Path, programs: list[Program]) -> ServerOptions:
    config = run_dir / "supervisord.conf"
    config.write_text(render_config(run_dir, programs, ["/usr/bin/python3", "-m", "watch"]))
    options = ServerOptions()
    options.realize(args=["-c", str(config)])
    return options


def test_commands_paths_and_policy_survive_supervisords_parser(tmp_path: Path) -> None:
    run_dir = tmp_path / "a folder with $HOME and 'quotes'" / "run"
    run_dir.mkdir(parents=True)
    argv = ("/usr/bin/python3", "-m", "x", "a b", "50%", "it's", "", "$HOME", "#not a comment")
    programs = [
        Program("embedded-postgresql", ("/pg/postgres", "-h", ""), run_dir, 10, "INT"),
        Program("worker-local", argv, run_dir, 30),
    ]
    options = parsed(run_dir, programs)
    found = {g.name: g.process_configs[0] for g in options.process_group_configs}
    assert set(found) == {LISTENER, "embedded-postgresql", "worker-local"}
    worker = found["worker-local"]
    assert shlex.split(worker.command) == list(argv)
    assert worker.directory == str(run_dir)
    assert worker.stdout_logfile == str(run_dir / "worker-local.log")
    # `up` starts programs in order; supervisord restarts them, stopping each as a group.
    assert worker.autostart is False and worker.autorestart is RestartUnconditionally
    assert worker.stopasgroup and worker.killasgroup
    assert found["embedded-postgresql"].stopsignal == 2  # SIGINT: PostgreSQL's fast shutdown
    assert shlex.split(found["embedded-postgresql"].command)[-1] == ""
    assert found[LISTENER].autostart is True
    assert options.server_configs[0]["file"] == str(socket_path(run_dir))
    assert options.nodaemon


@pytest.mark.parametrize(
    ("folder", "problem"), [("100%", "'%'"), ("x ;y", "' ;'"), ("x #y", "' #'")]
)
def test_what_supervisord_cannot_hold_is_refused_by_name(
    tmp_path: Path, folder: str, problem: str
) -> None:
    run_dir = tmp_path / folder / "run"
    with pytest.raises(PlatformError, match=problem):
        render_config(run_dir, [Program("alerts", ("/bin/true",), run_dir, 40)], ["/bin/true"])


def test_a_line_break_in_a_command_is_refused(tmp_path: Path) -> None:
    program = Program("alerts", ("/bin/echo", "a\nb"), tmp_path, 40)
    with pytest.raises(PlatformError, match="line break"):
        render_config(tmp_path, [program], ["/bin/true"])


def test_a_run_folder_too_deep_for_a_unix_socket_gets_a_short_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120) / "run"
    path = socket_path(deep)
    assert len(str(path)) < 108 and path != deep / "supervisor.sock"
    assert socket_path(deep) == path  # the same folder always gets the same socket
    assert socket_path(tmp_path / "run") == tmp_path / "run" / "supervisor.sock"


def test_a_supervisord_that_accepts_and_never_answers_is_not_answering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hung supervisord (its socket accepts, nothing comes back) must not hang `status`."""
    import os
    import socket

    from automates.platform import supervision

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "supervisord.pid").write_text(str(os.getpid()))  # a live process
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(supervision.socket_path(run_dir)))
    listener.listen(1)
    monkeypatch.setattr(supervision, "ANSWER_TIMEOUT_SECONDS", 0.5)
    try:
        assert supervision.Supervisor(run_dir).answering() is False
    finally:
        listener.close()
