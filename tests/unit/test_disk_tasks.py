from __future__ import annotations

from pathlib import Path

from tasks.disk import oversized_logs, rotate_log


def test_oversized_logs_include_the_embedded_postgres_log(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "pg").mkdir()
    (tmp_path / "run" / "prefect-server.log").write_bytes(b"x" * 2000)
    (tmp_path / "run" / "worker-local.log").write_bytes(b"x" * 10)
    (tmp_path / "pg" / "log").write_bytes(b"y" * 3000)
    (tmp_path / "pg" / "data.bin").write_bytes(b"z" * 5000)
    found = oversized_logs.fn(tmp_path, max_bytes=1000)
    assert [Path(f["path"]).relative_to(tmp_path).as_posix() for f in found] == [
        "pg/log",
        "run/prefect-server.log",
    ]


def test_rotation_keeps_the_tail_and_empties_the_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_bytes(b"old\n" * 100 + b"recent line\n")
    with log.open("ab") as writer:  # a writer holding the log open in append mode, as ours do
        freed = rotate_log.fn(log, keep_bytes=12)
        writer.write(b"after rotation\n")
    assert freed == 400
    assert (tmp_path / "server.log.1").read_bytes() == b"recent line\n"
    assert log.read_bytes() == b"after rotation\n"
