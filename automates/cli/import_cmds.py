"""`automates import crontab`: a legacy crontab, line by line, into declarations.

A dry run by default: every line, its class and the declaration it becomes or why none.
`--apply` writes the declarations into the registry; `--check` names the lines of a crontab
still in service that the registry does not represent yet. Exit 0: nothing to decide; 1: a line
is broken, unparsable or needs a decision (or, with --check, is not represented); 2: bad input.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from automates.cli.output import (
    JsonOption,
    console,
    emit_json,
    handle_errors,
    load_settings,
    working,
)
from automates.crontab.classify import classify
from automates.crontab.lines import CrontabError
from automates.crontab.mapping import load_mapping
from automates.crontab.registry_block import apply, read_registry, unrepresented
from automates.crontab.results import FINDINGS, Import, LineClass, LineResult, Options
from automates.registry.loader import load_registry

app = typer.Typer(help="Bring legacy schedules in as declarations.", no_args_is_help=True)

_STYLE = {
    LineClass.JOB: "green",
    LineClass.DISABLED_JOB: "dim",
    LineClass.BROKEN: "red",
    LineClass.NEEDS_DECISION: "yellow",
    LineClass.UNPARSABLE: "red",
    LineClass.DUPLICATE: "cyan",
    LineClass.RESTART_NET: "cyan",
}


@app.command("crontab")
@handle_errors
def crontab(
    source: str | None = typer.Argument(
        None, metavar="[FILE|-]", help="The crontab file, or - for standard input."
    ),
    user: bool = typer.Option(False, "--user", help="Read the current user's `crontab -l`."),
    timezone: str | None = typer.Option(
        None, help="The zone of lines no CRON_TZ/TZ covers (default: this machine's)."
    ),
    family: str | None = typer.Option(
        None, help="The family of every imported automate no --mapping rule classifies."
    ),
    caste: str | None = typer.Option(
        None, help="The caste of every imported automate no --mapping rule classifies."
    ),
    mapping: str | None = typer.Option(
        None,
        "--mapping",
        metavar="FILE",
        help="YAML rules (command glob → family, caste); the first match classifies a command.",
    ),
    reboot: str | None = typer.Option(
        None,
        "--reboot",
        metavar="service|oneshot",
        help="What an @reboot line without a restart net is: a service (kept running) or a "
        "oneshot automate. Without it, such a line needs a decision.",
    ),
    home: str | None = typer.Option(
        None, help="cron's working folder, for relative paths and ~ (default: $HOME)."
    ),
    wrapper: str = typer.Option(
        "ac_cron_wrapper.py", help="The file name of the old cron wrapper, unwrapped on import."
    ),
    write: bool = typer.Option(False, "--apply", help="Write the declarations into the registry."),
    check: bool = typer.Option(
        False, "--check", help="Name the lines of this crontab the registry does not represent."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Classify every line of a crontab into declarations; a dry run unless --apply."""
    if write and check:
        raise CrontabError("--apply and --check do not go together: check, or apply")
    data = _read(source, user)
    settings = load_settings()
    registry_path = settings.registry_path
    base = Options(
        project_root=settings.project_root,
        home=Path(home) if home is not None else Path.home(),
        timezone=timezone,
        family=family,
        caste=caste,
        wrapper=wrapper,
        reboot=reboot,
        mapping=load_mapping(Path(mapping)) if mapping is not None else None,
    )
    if check:
        declared = load_registry(registry_path).automates
        enabled = tuple(a for a in declared if a.enabled)
        result = classify(data, replace(base, existing=enabled))
        missing = unrepresented(result, declared)
        _report_check(result, missing, as_json)
        if missing:
            raise typer.Exit(1)
        return
    registry = read_registry(registry_path)
    with working(f"classifying {len(data.splitlines())} line(s)…", as_json):
        result = classify(data, replace(base, existing=registry.own))
    applied = apply(result, registry_path, settings.project_root, registry) if write else None
    if as_json:
        report = result.as_dict()
        if applied is not None:
            report["applied"] = {
                "registry": str(registry_path),
                "registry_changed": applied.registry_changed,
                "env_file_changed": applied.env_file_changed,
                "declarations": list(applied.written),
            }
        emit_json(report)
    else:
        _print_table(result)
        if applied is not None:
            what = "updated" if applied.registry_changed else "unchanged (already imported)"
            console.print(
                f"registry {registry_path}: {what}; {len(applied.written)} declaration(s) in "
                "the import block. Next: `automates validate`, then `automates sync`.",
                highlight=False,
            )
        else:
            console.print("dry run: nothing was written (--apply writes)", highlight=False)
    if result.findings:
        raise typer.Exit(1)


def _read(source: str | None, user: bool) -> bytes:
    if user == (source is not None):
        raise CrontabError("give one crontab: a FILE, - for standard input, or --user")
    if user:
        try:
            completed = subprocess.run(["crontab", "-l"], capture_output=True, check=False)
        except FileNotFoundError:
            raise CrontabError(
                "`crontab` is not installed here: give the crontab as a FILE"
            ) from None
        if completed.returncode != 0:
            detail = completed.stderr.decode(errors="replace").strip().splitlines()[:1]
            raise CrontabError(f"crontab -l failed: {detail[0] if detail else 'no output'}")
        return completed.stdout
    assert source is not None
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as error:
        raise CrontabError(f"{source}: {error.strerror or error}; nothing was imported") from None


def _print_table(result: Import) -> None:
    table = Table("line", "class", "automate", "what it becomes, or why none")
    for line in result.lines:
        if line.line_class in (LineClass.BLANK, LineClass.COMMENT):
            continue
        table.add_row(
            str(line.number),
            Text(line.line_class.value, style=_STYLE.get(line.line_class, "")),
            Text(line.name or "-"),
            Text(_what(line)),  # Text: crontab text is never read as markup
        )
    console.print(table)
    totals = ", ".join(f"{n} {name}" for name, n in result.totals.items() if n)
    console.print(f"{len(result.lines)} lines: {totals}", highlight=False)
    for zone, origin in result.timezones.items():
        console.print(f"timezone {zone}: from {origin}", highlight=False)
    if result.unclassified:
        console.print(
            f"{len(result.unclassified)} declaration(s) with family or caste 'unclassified' "
            "(no --mapping rule matched, no --family/--caste given): "
            + ", ".join(result.unclassified),
            highlight=False,
        )
    for rule in result.unused_rules:
        console.print(f"--mapping {rule}: matched no command", highlight=False)
    if result.env_file:
        names = ", ".join(sorted(result.env))
        console.print(f"env file {result.env_file}: {names}", highlight=False)
    console.print(
        "imported jobs run under the guard with its defaults (timeout 300 s unless the line "
        "used `timeout N`, no retries); cron had no timeout: check each job's duration",
        highlight=False,
    )


def _what(line: LineResult) -> str:
    if line.line_class is LineClass.BROKEN:
        return f"{line.reason}: imported disabled, never runs (reconcile reports it broken)"
    if line.line_class in FINDINGS or line.line_class is LineClass.DUPLICATE:
        return line.reason or ""
    return "; ".join(line.notes) or ("declared" if line.name else "")


def _report_check(result: Import, missing: list[LineResult], as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "lines": len(result.lines),
                "unrepresented": [line.as_dict() for line in missing],
            }
        )
        return
    if not missing:
        console.print("every active line of the crontab is represented in the registry")
        return
    for line in missing:
        console.print(
            f"line {line.number}: not represented ({line.line_class.value}): {line.text.strip()}",
            highlight=False,
        )
    console.print(f"{len(missing)} active line(s) not represented yet", highlight=False)
