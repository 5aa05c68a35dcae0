"""Every line of a crontab, classified, with the declaration it becomes or why none.

The result accounts for every line: its class counts once in the totals, which add up to the
number of lines. A job becomes a declaration in the registry's own format (checked with the
registry's own model); one that cannot, because its script is gone or because only the
operator can say what it means, says so, with the question. Nothing is guessed.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from crontab import SPECIALS
from pydantic import ValidationError

from automates.crontab.commands import CRON_DEFAULT_PATH, Command, Context, Outcome, analyse
from automates.crontab.lines import CrontabError, Line, LineKind, parse
from automates.crontab.zones import checked_zone, machine_zone
from automates.registry.fields import SLUG
from automates.registry.limits import MAX_STRING_CHARS
from automates.registry.loader import problem_of
from automates.registry.model import Automate

DEFAULT_ENV_FILE = "deployments/crontab.env"
UNCLASSIFIED = "unclassified"
# Variables cron itself reads, or the layer replaces; any other goes into the env file.
_CRON_VARIABLES = {
    "PATH": "used to find the commands, which are declared by their absolute path",
    "SHELL": "the guard runs commands without a shell",
    "MAILTO": "mail is replaced by alerts: declare a route in deployments/routes.yaml",
    "MAILFROM": "mail is replaced by alerts: declare a route in deployments/routes.yaml",
    "CRON_TZ": "the timezone of the schedules that follow it",
    "HOME": "cron's working folder: relative paths and ~ are resolved from it",
    "LOGNAME": "set by cron; the worker sets its own",
    "USER": "set by cron; the worker sets its own",
    "RANDOM_DELAY": "declare jitter_seconds instead",
}


class LineClass(StrEnum):
    JOB = "job"  # an active job: an enabled declaration
    DISABLED_JOB = "disabled_job"  # a commented-out job: a disabled declaration, never enabled
    BROKEN = "broken"  # its script or executable does not exist: no declaration
    NEEDS_DECISION = "needs_decision"  # only the operator can say what it becomes
    DUPLICATE = "duplicate"  # the same job as another line, or as a declaration
    ENV = "env"
    COMMENT = "comment"
    BLANK = "blank"
    UNPARSABLE = "unparsable"


FINDINGS = frozenset({LineClass.BROKEN, LineClass.NEEDS_DECISION, LineClass.UNPARSABLE})


@dataclass(frozen=True)
class LineResult:
    number: int
    text: str
    line_class: LineClass
    name: str | None = None  # the automate the line becomes, or is part of
    reason: str | None = None  # why no declaration: the question, what is missing
    notes: tuple[str, ...] = ()  # what changes under the layer
    enabled: bool = True  # False for a commented-out job

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.number,
            "class": self.line_class.value,
            "name": self.name,
            "reason": self.reason,
            "notes": list(self.notes),
            "text": self.text,
        }


@dataclass(frozen=True)
class Options:
    project_root: Path
    home: Path
    timezone: str | None = None  # --timezone: for lines no CRON_TZ/TZ covers
    family: str | None = None
    caste: str | None = None
    wrapper: str = "ac_cron_wrapper.py"
    env_file: str = DEFAULT_ENV_FILE
    existing: tuple[Automate, ...] = ()  # declarations the import must not duplicate


@dataclass(frozen=True)
class Import:
    lines: tuple[LineResult, ...]
    declarations: tuple[dict[str, Any], ...]
    env: Mapping[str, str]  # what the env file holds (values are never reported)
    env_file: str | None
    family: str
    caste: str
    timezones: Mapping[str, str] = field(default_factory=dict)  # zone → where it came from

    @property
    def totals(self) -> dict[str, int]:
        counts = Counter(line.line_class.value for line in self.lines)
        return {c.value: counts.get(c.value, 0) for c in LineClass}

    @property
    def findings(self) -> tuple[LineResult, ...]:
        return tuple(line for line in self.lines if line.line_class in FINDINGS)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": len(self.lines),
            "totals": self.totals,
            "timezones": dict(self.timezones),
            "family": self.family,
            "caste": self.caste,
            "env_file": {"path": self.env_file, "variables": sorted(self.env)},
            "declarations": list(self.declarations),
            "results": [line.as_dict() for line in self.lines],
        }


def classify(data: bytes, options: Options) -> Import:
    """Classify every line of the crontab `data`; raise CrontabError on bad input."""
    return _Classifier(parse(data), options).run()


@dataclass
class _Job:
    line: Line
    command: Command
    cron: str
    timezone: str
    env_files: tuple[str, ...]
    history: tuple[str, ...]


class _Classifier:
    def __init__(self, lines: list[Line], options: Options) -> None:
        self.lines = lines
        self.options = options
        self.results: dict[int, LineResult] = {}
        self.jobs: list[_Job] = []
        self.env: dict[str, str] = {}
        self.timezones: dict[str, str] = {}
        self.family = _option_slug(options.family, "--family")
        self.caste = _option_slug(options.caste, "--caste")
        if options.timezone is not None:
            checked_zone(options.timezone, "--timezone")

    def run(self) -> Import:
        self._walk()
        declarations = self._declare()
        ordered = tuple(self.results[line.number] for line in self.lines)
        assert len(ordered) == len(self.lines)
        return Import(
            lines=ordered,
            declarations=tuple(declarations),
            env=dict(self.env),
            env_file=self.options.env_file if self.env else None,
            family=self.family,
            caste=self.caste,
            timezones=self.timezones,
        )

    # --- pass 1: lines in order, with the environment in effect at each ---------------------

    def _walk(self) -> None:
        variables: dict[str, str] = {}
        other_names = {
            line.name
            for line in self.lines
            if line.kind is LineKind.ENV and line.name and line.name not in _CRON_VARIABLES
        }
        defined: dict[str, tuple[int, str]] = {}
        comments: list[str] = []
        for line in self.lines:
            if line.kind is LineKind.BLANK:
                self._result(line, LineClass.BLANK)
                comments = []
            elif line.kind is LineKind.COMMENT:
                self._result(line, LineClass.COMMENT)
                comments = [*comments, line.comment or ""][-5:]
            elif line.kind is LineKind.UNPARSABLE:
                self._result(line, LineClass.UNPARSABLE, reason=line.reason)
                comments = []
            elif line.kind is LineKind.ENV:
                self._env_line(line, variables, defined)
                comments = []
            else:
                self._job_line(line, variables, other_names, tuple(comments))
                comments = []

    def _env_line(
        self, line: Line, variables: dict[str, str], defined: dict[str, tuple[int, str]]
    ) -> None:
        assert line.name is not None and line.value is not None
        name, value = line.name, line.value
        if name in ("CRON_TZ", "TZ"):
            checked_zone(value, name, line.number)
        note = _CRON_VARIABLES.get(name)
        if note is None:
            self.env[name] = value
            note = f"goes into the env file {self.options.env_file} (its value is not shown)"
            if name == "TZ":
                note = "the schedules' timezone where no CRON_TZ is set; " + note
        previous = defined.get(name)
        variables[name] = value
        defined[name] = (line.number, value)
        if previous is not None and previous[1] != value:
            self._result(
                line if name in _CRON_VARIABLES else replace(line, text=f"{name}=***"),
                LineClass.NEEDS_DECISION,
                reason=f"{name} was set to another value on line {previous[0]}, so the jobs "
                "before and after this line saw different values; one env file holds one "
                "value (this one): which do the jobs need?",
            )
            return
        shown = line if name in _CRON_VARIABLES else replace(line, text=f"{name}=***")
        self._result(shown, LineClass.ENV, notes=(note,))

    def _job_line(
        self,
        line: Line,
        variables: dict[str, str],
        other_names: set[str],
        history: tuple[str, ...],
    ) -> None:
        assert line.schedule is not None and line.command is not None
        enabled = line.kind is LineKind.JOB
        home = Path(variables.get("HOME", str(self.options.home)))
        context = Context(
            home=home,
            path=variables.get("PATH", CRON_DEFAULT_PATH),
            project_root=self.options.project_root,
            variables=dict(variables),
            wrapper=self.options.wrapper,
        )
        command = analyse(line.command, context)
        notes = command.notes if enabled else ("commented out: declared disabled", *command.notes)

        def finding(line_class: LineClass, reason: str) -> None:
            self._result(line, line_class, command.name, reason, notes, enabled)

        if command.outcome is Outcome.UNPARSABLE:
            return finding(LineClass.UNPARSABLE, command.reason or "")
        if line.stdin is not None:
            return finding(
                LineClass.NEEDS_DECISION,
                f"an unescaped % ends the command at {line.command!r}: cron feeds the rest to "
                "its standard input; was % meant literally (write \\%), or is the input needed?",
            )
        if line.schedule == "@reboot":
            return finding(
                LineClass.NEEDS_DECISION,
                "@reboot runs the command once when the machine starts: is it a long-running "
                "service (run it as a service, e.g. under systemd), or a one-off at start-up "
                "(a oneshot automate)?",
            )
        if command.outcome is Outcome.BROKEN:
            return finding(LineClass.BROKEN, command.reason or "")
        if command.outcome is Outcome.DECISION:
            return finding(LineClass.NEEDS_DECISION, command.reason or "")
        seen = {n for n in variables if n in other_names}
        if seen and seen != other_names:
            missing = ", ".join(sorted(other_names - seen))
            return finding(
                LineClass.NEEDS_DECISION,
                f"this job comes before the lines that set {missing}, so it ran without them; "
                "one env file is declared for every imported job: should it get them?",
            )
        env_files = (self.options.env_file,) if seen else ()
        cron = SPECIALS.get(line.schedule.removeprefix("@"), line.schedule)
        timezone = self._zone(variables)
        self._result(line, LineClass.JOB if enabled else LineClass.DISABLED_JOB, notes=notes)
        self.jobs.append(_Job(line, command, cron, timezone, env_files, history))

    def _zone(self, variables: Mapping[str, str]) -> str:
        for name in ("CRON_TZ", "TZ"):
            if name in variables:
                self.timezones.setdefault(variables[name], f"{name} in the crontab")
                return variables[name]
        if self.options.timezone is not None:
            self.timezones.setdefault(self.options.timezone, "--timezone")
            return self.options.timezone
        zone = machine_zone()
        self.timezones.setdefault(zone, "this machine's timezone")
        return zone

    # --- pass 2: jobs grouped into declarations ---------------------------------------------

    def _declare(self) -> list[dict[str, Any]]:
        self._shared_locks()
        groups: dict[tuple[bool, tuple[str, ...]], list[_Job]] = defaultdict(list)
        active = {tuple(j.command.argv) for j in self.jobs if j.line.kind is LineKind.JOB}
        for job in self.jobs:
            enabled = job.line.kind is LineKind.JOB
            argv = tuple(job.command.argv)
            if not enabled and argv in active:
                first = next(
                    j
                    for j in self.jobs
                    if j.line.kind is LineKind.JOB and j.command.argv == job.command.argv
                )
                self._result(
                    job.line,
                    LineClass.DUPLICATE,
                    reason=f"an older form of line {first.line.number}, which is active: kept "
                    "in the crontab's history only",
                )
                continue
            if self._already_declared(job):
                continue
            groups[(enabled, argv)].append(job)
        names = self._names(groups)
        declarations = []
        for key, jobs in groups.items():
            declaration = self._declaration(names[key], jobs)
            if declaration is not None:
                declarations.append(declaration)
        return declarations

    def _shared_locks(self) -> None:
        by_lock: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        for job in self.jobs:
            if job.command.lock is not None:
                by_lock[job.command.lock].add(tuple(job.command.argv))
        shared = {lock for lock, commands in by_lock.items() if len(commands) > 1}
        kept = []
        for job in self.jobs:
            if job.command.lock in shared:
                others = [
                    str(j.line.number)
                    for j in self.jobs
                    if j.command.lock == job.command.lock and j is not job
                ]
                self._result(
                    job.line,
                    LineClass.NEEDS_DECISION,
                    job.command.name,
                    f"shares the lock {job.command.lock} with line(s) {', '.join(others)}, so "
                    "they never ran at once; a concurrency policy holds one automate only: "
                    "accept that they may now overlap, or merge them into one script?",
                    self.results[job.line.number].notes,
                    job.line.kind is LineKind.JOB,
                )
            else:
                kept.append(job)
        self.jobs = kept

    def _already_declared(self, job: _Job) -> bool:
        argv = tuple(job.command.argv)
        for automate in self.options.existing:
            if automate.command != argv:
                continue
            crons = {(s.form.expression, s.timezone) for s in automate.schedules}
            if (job.cron, job.timezone) in crons:
                self._result(
                    job.line,
                    LineClass.DUPLICATE,
                    automate.name,
                    f"already declared as {automate.name}",
                    enabled=job.line.kind is LineKind.JOB,
                )
            else:
                self._result(
                    job.line,
                    LineClass.NEEDS_DECISION,
                    job.command.name,
                    f"{automate.name} already runs this command, on other schedules: add "
                    f"{job.cron!r} ({job.timezone}) to its schedules, or is it another job?",
                    enabled=job.line.kind is LineKind.JOB,
                )
            return True
        return False

    def _names(
        self, groups: Mapping[tuple[bool, tuple[str, ...]], list[_Job]]
    ) -> dict[tuple[bool, tuple[str, ...]], str]:
        """Each group's slug; where two commands share one (or an existing declaration has it),
        a digest of the command tells them apart, the same on every import."""
        base = {key: jobs[0].command.name for key, jobs in groups.items()}
        counts = Counter(base.values())
        taken = {a.name for a in self.options.existing}
        names = {}
        for key, name in base.items():
            if counts[name] > 1 or name in taken:
                digest = hashlib.sha1("\0".join(key[1]).encode()).hexdigest()[:6]
                name = f"{name[: 63 - 7]}-{digest}"
            names[key] = name
        return names

    def _declaration(self, name: str, jobs: list[_Job]) -> dict[str, Any] | None:
        first = jobs[0]
        enabled = first.line.kind is LineKind.JOB
        schedules: list[dict[str, Any]] = []
        for job in jobs:
            schedule = {"slug": _schedule_slug(job.cron, job.timezone)}
            schedule |= {"cron": job.cron, "timezone": job.timezone}
            if schedule in schedules:
                self._result(
                    job.line,
                    LineClass.DUPLICATE,
                    name,
                    f"the same job as line {first.line.number}",
                    enabled=enabled,
                )
                continue
            schedules.append(schedule)
            merged = () if job is first else (f"merged with line {first.line.number}",)
            result = self.results[job.line.number]
            self.results[job.line.number] = replace(result, name=name, notes=result.notes + merged)
        declaration: dict[str, Any] = {
            "name": name,
            "kind": "recurring",
            "caste": self.caste,
            "family": self.family,
            "description": _description(first),
            "command": list(first.command.argv),
            "schedules": schedules,
        }
        if first.command.lock is not None:
            declaration["concurrency"] = "forbid"
        if first.env_files:
            declaration["env_files"] = list(first.env_files)
        if not enabled:
            declaration["enabled"] = False
        try:
            Automate.model_validate(declaration)
        except ValidationError as error:
            detail = error.errors()[0]
            where, message = problem_of(detail["loc"], detail)
            for job in jobs:
                self._result(
                    job.line,
                    LineClass.NEEDS_DECISION,
                    name,
                    f"the declaration is refused, field {where}: {message}",
                    enabled=enabled,
                )
            return None
        return declaration

    def _result(
        self,
        line: Line,
        line_class: LineClass,
        name: str | None = None,
        reason: str | None = None,
        notes: tuple[str, ...] = (),
        enabled: bool = True,
    ) -> None:
        self.results[line.number] = LineResult(
            line.number, line.text, line_class, name, reason, notes, enabled
        )


def _option_slug(value: str | None, option: str) -> str:
    if value is None:
        return UNCLASSIFIED
    if not SLUG.match(value) or len(value) > 63:
        raise CrontabError(
            f"{option} {value!r} is not a slug (lowercase letters, digits and inner hyphens)"
        )
    return value


def _schedule_slug(cron: str, timezone: str) -> str:
    digest = hashlib.sha1(f"{cron}|{timezone}".encode()).hexdigest()[:8]
    return f"cron-{digest}"


def _description(job: _Job) -> str:
    kept = "Imported from the crontab: " + job.line.text.strip().lstrip("#").strip()
    if job.history:
        kept += "\nHistory: " + " / ".join(h for h in job.history if h)
    if len(kept) > MAX_STRING_CHARS:
        kept = kept[: MAX_STRING_CHARS - 20] + "... (cut)"
    return kept
