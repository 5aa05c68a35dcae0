"""Issue 17 end to end: a legacy crontab of the reference's shape (an archaeology log of
commented-out history with cutover tags, about fifty active lines of every form, variables,
an @reboot loop with its restart net, a line pointing at a script that is gone) imported,
applied, validated and synced to a real Prefect server, as an operator does it with the CLI;
the imported jobs run through a real worker under the guard; reconcile names the broken lines;
re-importing changes nothing; `--check` names a line added afterwards."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from prefect.client.schemas.objects import StateType

from automates.settings import Settings
from tests.fixtures.commands import invoke_json
from tests.fixtures.loopback_http import QuietHandler, serve_http
from tests.fixtures.projects import Project
from tests.fixtures.servers import cli_env, final_run, runs_of, store_rows, wait_for
from tests.integration.test_triggers import forget_triggers  # noqa: F401 (a fixture)

ZONE = "Asia/Makassar"
WAIT = 180.0  # generous bounds: each wait ends as soon as its condition holds
HTTP_HITS: list[str] = []


@pytest.fixture
def endpoint() -> Iterator[str]:
    """A real local HTTP endpoint, like the ones the reference's curl lines call; its base URL."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            HTTP_HITS.append(self.path)
            self.answer(200, b"ok\n")

    HTTP_HITS.clear()
    with serve_http(Handler) as url:
        yield url


def script(path: Path, body: str, executable: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755 if executable else 0o644)


def legacy_home(home: Path, markers: Path) -> None:
    """The operator's home folder: the old wrapper and the scripts the crontab runs. Each
    writes what it was given (and a variable of the crontab) to a marker file."""
    markers.mkdir(parents=True)
    mark = f'echo "$* GREETING=$GREETING" >> {markers}/$(basename "$0")\n'
    py_mark = (
        "import os, sys, pathlib\n"
        f"with open(pathlib.Path({str(markers)!r}, pathlib.Path(__file__).stem), 'a') as f:\n"
        "    f.write(' '.join(sys.argv[1:]) + ' GREETING=' + os.environ.get('GREETING', '') + "
        "'\\n')\n"
    )
    script(home / "synedre" / "ac_cron_wrapper.py", "# the old wrapper\n")
    for name in (
        "ac_backup", "ac_sync_mail", "ac_digest", "ac_cleanup", "ac_rotate", "ac_report",
        "ac_index", "ac_health", "ac_archive", "ac_quota",
    ):  # fmt: skip
        script(home / "synedre" / f"{name}.py", py_mark, executable=False)
    script(home / "synedre" / "ac_monitor.py", "#!/usr/bin/python3\n" + py_mark)
    for name in (
        "prune", "stats", "export_csv", "reindex", "warm_cache", "dedupe", "vacuum_tmp",
    ):  # fmt: skip
        script(home / "jobs" / f"{name}.py", py_mark, executable=False)
    script(home / "lib" / "tasks" / "__init__.py", "")
    script(home / "lib" / "tasks" / "sweep.py", py_mark.replace("__file__", "'sweep'"))
    script(
        home / "js" / "feed.js",
        "require('fs').appendFileSync("
        f"{json.dumps(str(markers / 'feed'))}, process.argv.slice(2).join(' ') + '\\n')\n",
    )
    for name in (
        "db_vacuum", "rotate_logs", "backup_etc", "sync_remote", "disk_report", "certs_check",
        "mail_in", "mail_out", "daily_digest", "hourly_check", "weekly_rollup", "stamp",
        "purge_uploads", "refresh_dns", "new_job", "build",
    ):  # fmt: skip
        script(home / "bin" / f"{name}.sh", "#!/bin/sh\n" + mark)
    script(home / "bin" / "slow_export.sh", "#!/bin/sh\n" + mark + "sleep 120\n")
    script(
        home / "bin" / "brainstorm_loop.sh",
        f"#!/bin/sh\necho $$ >> {markers}/brainstorm.pids\nwhile :; do sleep 1; done\n",
    )


def legacy_crontab(home: Path, url: str, hour: int) -> str:
    """About 160 lines: the reference's crontab, shaped like an archaeology log. Active jobs
    fire at `hour` (in Asia/Makassar, away from now) so that no scheduled run of a job this
    test triggers starts while it runs."""
    h = hour
    wrap = "python3 $HOME/synedre/ac_cron_wrapper.py"
    log = ">> $HOME/logs/cron.log 2>&1"
    history = [
        f"# [cutover 2024-0{m}-1{m}] moved to the new box; old line kept below for the record"
        for m in range(1, 10)
    ]
    lines = [
        "# crontab of op@atlas: edit with care, this IS production",
        "# owner: ops (see wiki/ops/cron). Every change needs a [tag] and a date.",
        "SHELL=/bin/bash",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "MAILTO=ops@example.org",
        f"CRON_TZ={ZONE}",
        "GREETING=bonjour",
        f"PYTHONPATH={home}/lib",
        "",
        "# ===================================================================",
        "# 1. backups and storage (through the wrapper since 2023-05)",
        "# ===================================================================",
        history[0],
        f"#15 {h} * * * python3 $HOME/synedre/ac_backup.py --full",
        f"15 {h} * * * {wrap} ac_backup.py --full {log}",
        f"20 {h} * * 0 {wrap} ac_archive.py --month {log}",
        f"25 {h} 1 * * {wrap} ac_quota.py --report",
        "# [paused 2025-02-10 JD] archive is done by the NAS now",
        f"#30 {h} * * * {wrap} ac_archive.py --day",
        f"35 {h} * * * flock -n /tmp/op-db.lock $HOME/bin/db_vacuum.sh --analyze {log}",
        f"40 {h} * * 1-5 flock -n /tmp/op-idx.lock python3 $HOME/jobs/reindex.py",
        f"45 {h} * * * $HOME/bin/backup_etc.sh /etc {log}",
        f"50 {h} * * * timeout 3 $HOME/bin/slow_export.sh --all {log}",
        f"55 {h} * * * timeout 10m $HOME/bin/sync_remote.sh",
        "#",
        "# [removed 2025-07-01] invoice sync: the accounting API is gone... or is it?",
        f"5 {h} * * * $HOME/bin/old_invoice_sync.sh {log}",
        "",
        "# ===================================================================",
        "# 2. mail and digests",
        "# ===================================================================",
        f"*/30 * * * * {wrap} ac_monitor.py --quick",
        f"0 {h} * * * {wrap} ac_sync_mail.py",
        f"2 {h} * * * {wrap} ac_digest.py --daily {log}",
        history[1],
        f"#2 {h} * * * {wrap} ac_digest.py --daily --verbose",
        f"4 {h} * * * flock -n /tmp/op-mail.lock $HOME/bin/mail_in.sh",
        f"6 {h} * * * flock -n /tmp/op-mail.lock $HOME/bin/mail_out.sh",
        "@daily $HOME/bin/daily_digest.sh",
        "@weekly $HOME/bin/weekly_rollup.sh > /dev/null 2>&1",
        "",
        "# ===================================================================",
        "# 3. maintenance: direct calls (never went through the wrapper)",
        "# ===================================================================",
        f"8 {h} * * * python3 $HOME/jobs/prune.py --days 30",
        f"10 {h} * * * python3 -u $HOME/jobs/stats.py {log}",
        f"12 {h} * * * /usr/bin/python3 $HOME/jobs/export_csv.py out.csv",
        f"14 {h} * * * python3 -m tasks.sweep --all",
        f"16 {h} * * 6 python3 $HOME/jobs/dedupe.py",
        f"18 {h} * * * python3 $HOME/jobs/vacuum_tmp.py",
        f"22 {h} * * * node $HOME/js/feed.js --since 1d",
        f"24 {h} * * * bash $HOME/bin/rotate_logs.sh {log}",
        f"26 {h} * * * $HOME/bin/disk_report.sh / /home",
        f"28 {h} * * 1 $HOME/bin/certs_check.sh --days 14",
        f"30 {h} 1,15 * * $HOME/bin/purge_uploads.sh --older 30d",
        f"32 {h} * jan-jun mon $HOME/bin/refresh_dns.sh",
        f"34 {h} * * * $HOME/bin/stamp.sh \\%Y-\\%m-\\%d",
        f"36 {h} * * * $HOME/bin/stamp.sh %Y",
        f"38 {h} * * * cd $HOME/site && ./build.sh",
        f"42 {h} * * * python3 $HOME/jobs/warm_cache.py",
        f"42 {h} * * *   python3 $HOME/jobs/warm_cache.py > /dev/null",
        "@hourly $HOME/bin/hourly_check.sh",
        f"1 {h} * * 2,4 $HOME/bin/backup_etc.sh /srv",
        f"3 {h} 1-7 * 1 $HOME/bin/weekly_rollup.sh --first-monday",
        f"5 {h} */2 * * $HOME/bin/purge_uploads.sh --older 60d",
        f"7 {h} * * * sh $HOME/bin/refresh_dns.sh --secondary",
        f"9 {h} * * * {wrap} ac_quota.py --warn",
        f"11 {h} * * * timeout 1h python3 $HOME/jobs/prune.py --days 90",
        "",
        "# ===================================================================",
        "# 4. the wrapper, the rest of it",
        "# ===================================================================",
        f"44 {h} * * * {wrap} ac_cleanup.py --tmp",
        f"46 {h} * * * {wrap} ac_rotate.py",
        f"48 {h} * * 5 {wrap} ac_report.py --weekly {log}",
        f"52 {h} * * * {wrap} ac_index.py",
        f"54 {h} * * * {wrap} ac_health.py --strict",
        history[2],
        f"#54 {h} * * * {wrap} ac_health.py",
        "",
        "# ===================================================================",
        "# 5. local endpoints",
        "# ===================================================================",
        f"56 {h} * * * curl -fsS {url}/api/tick > /dev/null",
        f"57 {h} * * * curl -s {url}/api/digest",
        f"58 {h} * * * wget -q -O /dev/null {url}/api/warm",
        "",
        "# ===================================================================",
        "# 6. the brainstorm loop (starts at boot; the net restarts it if it died)",
        "# ===================================================================",
        "@reboot nohup $HOME/bin/brainstorm_loop.sh >> $HOME/logs/brainstorm.log 2>&1 &",
        "*/5 * * * * pgrep -f brainstorm_loop.sh > /dev/null || nohup "
        "$HOME/bin/brainstorm_loop.sh >> $HOME/logs/brainstorm.log 2>&1 &",
        "",
        "# ===================================================================",
        "# 7. archaeology: paused and retired jobs, kept for the record",
        "# ===================================================================",
    ]
    retired = [
        ("paused 2024-11-02 AM] duplicates the NAS snapshot", f"{wrap} ac_backup.py --incremental"),
        ("retired 2025-01-15] replaced by certs_check", "$HOME/bin/certs_check.sh --legacy"),
        ("paused 2025-03-03 JD] too noisy, INC-482", f"{wrap} ac_monitor.py --deep"),
        ("cutover 2025-04] the old gateway is gone", "$HOME/bin/legacy_gateway.sh"),
        ("paused 2025-05-20] waiting for the new DNS provider", "$HOME/bin/refresh_dns.sh --all"),
        ("retired 2025-06-01] stats moved to the warehouse", "python3 $HOME/jobs/stats.py -w"),
        ("paused 2025-08-08] disk report weekly is enough", "$HOME/bin/disk_report.sh /"),
        ("paused 2025-09-09] see INC-733", "python3 $HOME/jobs/dedupe.py --deep"),
    ]
    for number, (tag, job) in enumerate(retired):
        lines += [f"# [{tag}", f"#{number * 5} {h} * * * {job}", "#"]
    for year in (2023, 2024, 2025):
        lines += [f"# --- changes {year} ---"]
        lines += [
            f"# {year}-{month:02d}-0{1 + month % 9} [change] adjusted a schedule, see the wiki"
            for month in range(1, 13)
        ]
        lines += [*history[3 + (year - 2023) * 2 : 5 + (year - 2023) * 2], ""]
    lines += ["# end of crontab: keep the trailing newline"]
    return "\n".join(lines) + "\n"


def marker(markers: Path, name: str) -> str:
    path = markers / name
    return path.read_text() if path.exists() else ""


@pytest.mark.usefixtures("forget_triggers")
def test_a_legacy_crontab_is_imported_applied_synced_and_runs_under_the_guard(
    server: Settings, project: Project, worker: str, endpoint: str, tmp_path: Path
) -> None:
    home, markers = tmp_path / "home" / "op", tmp_path / "markers"
    legacy_home(home, markers)
    hour = (datetime.now(ZoneInfo(ZONE)).hour + 12) % 24
    crontab = tmp_path / "crontab.txt"
    crontab.write_text(legacy_crontab(home, endpoint, hour))
    total = len(crontab.read_text().splitlines())
    assert total >= 150
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "rules:\n"
        "  - command: '*/synedre/*'\n    family: synedre\n"
        "  - command: '*/curl *'\n    family: http\n"
        "  - command: '*/wget *'\n    family: http\n"
        "  - command: '*/brainstorm_loop.sh'\n    family: agents\n    caste: oracles\n"
    )
    project.declare()  # an operator's registry, empty so far
    settings = project.settings(server, work_pool=worker)
    env = cli_env(settings)
    common = ["--home", str(home), "--mapping", str(mapping), "--caste", "horlogers"]

    # The dry run, as a real process reading the crontab on standard input: every line
    # accounted for, nothing written.
    before = project.registry.read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "automates.cli", "import", "crontab", "-", *common, "--json"],
        input=crontab.read_bytes(),
        env=env,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # findings: broken lines, decisions
    report = json.loads(done.stdout)
    assert report["lines"] == total == sum(report["totals"].values())
    totals = {k: v for k, v in report["totals"].items() if v}
    assert totals == {
        "job": 42,  # the @reboot loop among them, as a service
        "disabled_job": 10,
        "broken": 2,  # the invoice sync (active) and the retired gateway (commented out)
        "needs_decision": 5,  # a shared lock (2 lines), an unescaped %, cd &&, timeout 1h
        "duplicate": 2,  # an older form of an active job; the same job, output elsewhere
        "restart_net": 1,
        "env": 6,
        "comment": 91,
        "blank": 10,
    }
    active = [r for r in report["results"] if r["class"] not in ("env", "comment", "blank")]
    assert len([r for r in active if not r["text"].startswith("#")]) == 50
    assert project.registry.read_bytes() == before

    # Applied: the registry gets the block; validate passes, warning of the broken lines.
    applied = invoke_json(env, "import", "crontab", str(crontab), *common, "--apply", code=1)
    assert applied["applied"]["registry_changed"] is True
    by_line = {r["line"]: r for r in applied["results"]}
    names = {d["name"]: d for d in applied["declarations"]}
    broken = sorted({by_line[n]["name"] for n, r in by_line.items() if r["class"] == "broken"})
    assert all(names[b].get("enabled") is False for b in broken)
    [loop] = [d for d in applied["declarations"] if d["kind"] == "service"]
    assert (loop["name"], loop["family"], loop["caste"]) == ("brainstorm-loop", "agents", "oracles")
    assert applied["unclassified"] and all(
        names[n]["family"] == "unclassified" for n in applied["unclassified"]
    )
    validated = invoke_json(env, "validate")
    assert validated["valid"] is True
    assert sorted(w["automate"] for w in validated["warnings"]) == broken

    # Synced to the real server: every declaration deployed, the service started.
    synced = invoke_json(env, "sync")
    assert len(synced["created"]) == len(names)
    assert synced["services_started"] == ["brainstorm-loop"]

    # The imported jobs run through the worker, under the guard.
    tick = next(n for n in names if n.startswith("http-") and n.endswith("api-tick"))
    triggered = {
        name: invoke_json(env, "trigger", name)["flow_run_id"]
        for name in (
            "ac-backup-full",
            "tasks-sweep-all",
            "db-vacuum-analyze",
            tick,
            "feed-since-1d",
        )
    }
    timed = invoke_json(env, "trigger", "slow-export-all")["flow_run_id"]
    for name, run_id in triggered.items():
        run = wait_for(partial(final_run, settings, run_id), WAIT, f"the run of {name}")
        assert run.state is not None and run.state.type is StateType.COMPLETED, (name, run.state)
    assert marker(markers, "ac_backup").split() == ["--full", "GREETING=bonjour"]
    # Who asked is on the run's journal row: the operator who ran `automates trigger`.
    query = "SELECT principal FROM automates.execution_journal WHERE flow_run_id = :id"
    journaled = wait_for(
        lambda: store_rows(settings, query, id=UUID(triggered["ac-backup-full"])) or None,
        WAIT,
        "the run's journal row",
    )
    assert journaled == [{"principal": f"operator:{getpass.getuser()}"}]
    assert marker(markers, "sweep").split() == ["--all", "GREETING=bonjour"]  # PYTHONPATH
    assert marker(markers, "db_vacuum.sh").split() == ["--analyze", "GREETING=bonjour"]
    assert marker(markers, "feed").split() == ["--since", "1d"]
    assert "/api/tick" in HTTP_HITS
    slow = wait_for(partial(final_run, settings, timed), WAIT, "the timed-out run")
    assert slow.state is not None and slow.state.name == "TimedOut", slow.state
    wait_for(lambda: marker(markers, "brainstorm.pids"), WAIT, "the service's loop to start")
    wait_for(
        lambda: [
            r
            for r in runs_of(settings, "service/brainstorm-loop")
            if r.state is not None and r.state.type is StateType.RUNNING
        ],
        WAIT,
        "the service's loop run",
    )

    # Reconcile: every imported broken line is broken, and nothing else drifted.
    reconciled = invoke_json(env, "reconcile", code=1)
    assert sorted(d["subject"] for d in reconciled["drifts"]) == broken
    assert {d["kind"] for d in reconciled["drifts"]} == {"broken"}

    # Re-importing the same crontab changes nothing, byte for byte.
    registry, env_file = project.registry.read_bytes(), project.root / "deployments/crontab.env"
    secrets = env_file.read_bytes()
    again = invoke_json(env, "import", "crontab", str(crontab), *common, "--apply", code=1)
    assert again["applied"]["registry_changed"] is False
    assert project.registry.read_bytes() == registry and env_file.read_bytes() == secrets

    # During cut-over: --check names the active lines not represented, and a line added
    # to the crontab afterwards.
    pending = invoke_json(
        env, "import", "crontab", str(crontab), "--home", str(home), "--check", code=1
    )
    findings = {r["line"] for r in pending["unrepresented"]}
    assert findings == {
        n
        for n, r in by_line.items()
        if r["class"] in ("broken", "needs_decision") and not r["text"].startswith("#")
    }
    with crontab.open("a") as file:
        file.write(f"20 {hour} * * * $HOME/bin/new_job.sh --first\n")
    added = invoke_json(
        env, "import", "crontab", str(crontab), "--home", str(home), "--check", code=1
    )
    assert {r["line"] for r in added["unrepresented"]} == findings | {total + 1}
