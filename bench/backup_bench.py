"""Benchmark: a backup and its verified restore (the restore drill) of a large layer database,
and so the layer's recovery time objective.

    uv run python -m bench.backup_bench                  # 1M journal rows, 100k flow runs
    uv run python -m bench.backup_bench --no-doc --journal-rows 100000 --flow-runs 10000

On the machine's PostgreSQL (127.0.0.1:5432, user postgres; `--admin-url` for another), in a
scratch database `bench_backup_<random>` dropped at the end (also on error): Prefect's own
tables (`prefect server database upgrade`), the store at its newest migration, then synthetic
rows inserted with generate_series: `--journal-rows` execution-journal rows (50 automates,
a tenth of them failed with a message) and `--flow-runs` Prefect flow runs of one flow, each
with one state row. Then, timed, the same calls the automates make:

1. the backup (`take_backup`: snapshot, pg_dump in custom format, `pg_restore --list`,
   checksum, rename, manifest);
2. the drill (`drill`: checksum, a scratch database created, `pg_restore --jobs`, every
   table's rows counted and compared with the manifest, the scratch database dropped), once per
   `--jobs` value.

The restore time of the drill (pg_restore into an empty database, indexes and constraints
included) is the recovery time objective: how long the layer's database takes to come back
from its newest backup. The whole drill adds the checks.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if (_checkout := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _checkout)  # run as a script: the imports below need the checkout

import psycopg

from automates.backups.drill import default_scratch, drill
from automates.backups.dump import take_backup
from automates.backups.folder import BackupFolder
from automates.backups.pgurl import PgUrl
from automates.backups.restore import admin, drop_database, identity_of
from automates.store.engine import make_engine, migrate
from automates.store.urls import prefect_server_url, with_database
from bench.common import log, machine, save_result
from bench.doc import framed, machine_part, markers, shell_block, write_section

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AROUND = markers("backup-bench", "bench/backup_bench.py")
REPRODUCE = "uv run python -m bench.backup_bench"
MB = 1024 * 1024

JOURNAL = """
INSERT INTO automates.execution_journal
    (automate, flow_run_id, started_at, finished_at, duration_seconds, outcome, message,
     attempts, exit_code, steps, counters)
SELECT 'bench-' || (n %% 50), gen_random_uuid(),
       now() - n * interval '1 second' - interval '3 seconds', now() - n * interval '1 second',
       3.0, CASE WHEN n %% 10 = 0 THEN 'failed' ELSE 'completed' END,
       CASE WHEN n %% 10 = 0 THEN 'exit code 1: connection refused by upstream' END,
       1, CASE WHEN n %% 10 = 0 THEN 1 ELSE 0 END,
       '[{"name": "run", "seconds": 3.0}]'::jsonb, '{"items": 12}'::jsonb
FROM generate_series(1, %s) n"""
FLOW = "INSERT INTO flow (name) VALUES ('bench-flow') RETURNING id"
FLOW_RUNS = """
INSERT INTO flow_run (name, flow_id, state_type, state_name, start_time, end_time,
                      total_run_time, run_count, parameters, tags)
SELECT 'bench-run-' || n, %s, 'COMPLETED', 'Completed', now() - n * interval '1 minute',
       now() - n * interval '1 minute' + interval '3 seconds', interval '3 seconds', 1,
       '{"keep_days": 30}'::jsonb, '["managed-by:automates"]'::jsonb
FROM generate_series(1, %s) n"""
STATES = """
INSERT INTO flow_run_state (flow_run_id, type, name, timestamp)
SELECT id, 'COMPLETED', 'Completed', end_time FROM flow_run"""


def build(url: str, journal_rows: int, flow_runs: int) -> dict[str, float]:
    """Prefect's tables, the store, and the synthetic rows; the seconds each step took."""
    took: dict[str, float] = {}
    started = time.monotonic()
    env = {
        **os.environ,
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_server_url(url),
        "PREFECT_HOME": tempfile.mkdtemp(prefix="bench-backup-prefect-"),
    }
    subprocess.run(
        [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
        env=env,
        check=True,
        capture_output=True,
    )
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    took["schemas_seconds"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(JOURNAL, (journal_rows,))
        row = connection.execute(FLOW).fetchone()
        assert row is not None
        connection.execute(FLOW_RUNS, (row[0], flow_runs))
        connection.execute(STATES)
        connection.execute("VACUUM ANALYZE")
        size = connection.execute("SELECT pg_database_size(current_database())").fetchone()
    took["insert_seconds"] = round(time.monotonic() - started, 1)
    took["database_mb"] = round((size[0] if size else 0) / MB, 1)
    return took


def measure(url: str, jobs: list[int]) -> dict[str, Any]:
    live = PgUrl.parse(url)
    folder = BackupFolder(Path(tempfile.mkdtemp(prefix="bench-backup-")))
    started = time.monotonic()
    made = take_backup(live, folder)
    backup_wall = round(time.monotonic() - started, 2)
    log(f"backup {made.name}: {made.manifest.size_bytes / MB:.1f} MB in {backup_wall} s")
    drills = []
    for count in jobs:
        started = time.monotonic()
        record = drill(made, default_scratch(live, None), identity_of(live), jobs=count)
        wall = round(time.monotonic() - started, 2)
        if not record.passed:
            raise SystemExit(f"the drill failed: {record.problems}")
        log(f"drill with --jobs={count}: restore {record.restore_seconds} s, drill {wall} s")
        restored = record.restore_seconds or 0.0
        drills.append({"jobs": count, "restore_seconds": restored, "drill": wall})
    manifest = made.manifest
    counts = {t.qualified: t.rows for t in manifest.contents.tables}
    for leftover in folder.path.iterdir():
        leftover.unlink()
    folder.path.rmdir()
    return {
        "dump_seconds": manifest.duration_seconds,
        "backup_wall_seconds": backup_wall,
        "dump_mb": round(manifest.size_bytes / MB, 1),
        "pg_dump": manifest.pg_dump,
        "tables": len(counts),
        "rows": manifest.rows,
        "journal_rows": counts["automates.execution_journal"],
        "flow_runs": counts["public.flow_run"],
        "drills": drills,
        "rto_seconds": min(d["restore_seconds"] for d in drills),
    }


def section(r: dict[str, Any]) -> str:
    m = r["measured"]
    rows = [
        f"| drill, `pg_restore --jobs={d['jobs']}` | {d['restore_seconds']:.1f} | "
        f"{d['drill']:.1f} |"
        for d in m["drills"]
    ]
    body = [
        f"Measured {r['date']} by `bench/backup_bench.py` on the machine's PostgreSQL "
        f"{r['server_version']}, a database of {r['build']['database_mb']:.0f} MB: "
        f"{m['journal_rows']:,} execution-journal rows and {m['flow_runs']:,} Prefect flow "
        f"runs (each with a state row), {m['tables']} tables, {m['rows']:,} rows in all "
        "(synthetic, inserted with generate_series). The same calls the `backup` and "
        "`backup-verify` automates make, with the client programs they pick "
        f"({m['pg_dump']}).",
        "",
        "| Step | Restore (s) | Wall (s) |",
        "|---|---:|---:|",
        f"| backup: snapshot, pg_dump (custom format), `pg_restore --list`, sha256, rename, "
        f"manifest; dump {m['dump_mb']:.1f} MB | | {m['backup_wall_seconds']:.1f} |",
        *rows,
        "",
        f"**Recovery time objective: {m['rto_seconds']:.0f} s**, the restore of the newest "
        "backup into an empty database (pg_restore, indexes and constraints included); a "
        "drill adds the checksum, every table's row count and the drop. Add the time to stop "
        "the layer and to start it again (`automates down`, `automates backup restore --to "
        "live --force`, `automates up`).",
    ]
    if r["scaled_down"]:
        body += ["", f"Scaled down from the issue's sizes: {r['scaled_down']}."]
    machine_lines = machine_part(
        r["machine"],
        f"Python {r['machine']['python']}, Prefect {r['machine']['prefect']}, "
        f"PostgreSQL {r['server_version']}",
    )
    return framed(
        AROUND,
        "Backup and restore drill: the recovery time objective",
        body,
        machine_lines,
        shell_block("Reproduce:", REPRODUCE),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--journal-rows", type=int, default=1_000_000)
    parser.add_argument("--flow-runs", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    facts = machine()
    name = f"bench_backup_{secrets.token_hex(4)}"
    admin_url = PgUrl.parse(args.admin_url)
    with admin(admin_url) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        row = connection.execute("SHOW server_version").fetchone()
    url = with_database(args.admin_url, name)
    try:
        log(f"building {name}: {args.journal_rows} journal rows, {args.flow_runs} flow runs")
        built = build(url, args.journal_rows, args.flow_runs)
        log(f"built: {built}")
        measured = measure(url, args.jobs)
    finally:
        with admin(admin_url) as connection:
            drop_database(connection, name)
    sizes = (args.journal_rows, args.flow_runs)
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": facts,
        "server_version": row[0].split()[0] if row else "unknown",
        "build": built,
        "measured": measured,
        "scaled_down": None
        if sizes >= (1_000_000, 100_000)
        else f"{sizes[0]:,} journal rows, {sizes[1]:,} flow runs",
    }
    save_result("backup-bench", result)
    if not args.no_doc:
        write_section(section(result), *AROUND)


if __name__ == "__main__":
    main()
