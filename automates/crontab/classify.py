"""Every line of a crontab, classified, with the declaration it becomes or why none.

The result accounts for every line: its class counts once in the totals, which add up to the
number of lines. A job becomes a declaration in the registry's own format (checked with the
registry's own model); one whose script is gone is declared disabled and reported broken; one
that cannot, because only the operator can say what it means, says so, with the question.
Nothing is guessed.

An `@reboot` line with a restart net for the same command (`*/5 * * * * pgrep -f x || x`) is a
loop: one service declaration (kind `service`), the net accounted for as part of it, since the
layer now restarts the service itself. A lone `@reboot` line is a service or a one-off at
start-up only when the operator says which (`Options.reboot`).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from crontab import SPECIALS
from pydantic import ValidationError

from automates.crontab.commands import (
    CRON_DEFAULT_PATH,
    Command,
    Context,
    Outcome,
    analyse,
    analyse_service,
)
from automates.crontab.lines import CrontabError, Line, LineKind, parse
from automates.crontab.nets import Net, restart_net
from automates.crontab.results import Import, LineClass, LineResult, Options
from automates.crontab.zones import checked_zone, machine_zone
from automates.limits import MAX_STRING_CHARS
from automates.registry.fields import SLUG
from automates.registry.loader import problem_of
from automates.registry.model import Automate, Kind

UNCLASSIFIED = "unclassified"
REBOOT_KINDS = (Kind.SERVICE.value, Kind.ONESHOT.value)
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
_BROKEN_NOTE = (
    "imported disabled: it never runs; restore what is missing, then enable it "
    "(until then `automates reconcile` reports it broken)"
)


def classify(data: bytes, options: Options) -> Import:
    """Classify every line of the crontab `data`; raise CrontabError on bad input."""
    return _Classifier(parse(data), options).run()


class _OnLine:
    """A job or a restart net, read from one crontab line: active unless the line is
    commented out."""

    line: Line  # each subclass, a dataclass, declares it again as its first field

    @property
    def active(self) -> bool:
        return self.line.kind is LineKind.JOB


@dataclass
class _Job(_OnLine):
    line: Line
    command: Command
    kind: Kind
    cron: str | None  # a recurring job's schedule
    timezone: str | None
    env_files: tuple[str, ...]
    history: tuple[str, ...]
    nets: tuple[Line, ...] = ()  # a service's restart nets

    @property
    def key(self) -> tuple[Kind, bool, tuple[str, ...], int | None]:
        """Lines with one key are one declaration (a recurring one with several schedules)."""
        return (self.kind, self.active, self.command.argv, self.command.timeout)


@dataclass(frozen=True)
class _NetLine(_OnLine):
    line: Line
    net: Net


class _Classifier:
    def __init__(self, lines: list[Line], options: Options) -> None:
        self.lines = lines
        self.options = options
        self.results: dict[int, LineResult] = {}
        self.jobs: list[_Job] = []
        self.reboots: list[_Job] = []  # @reboot lines, until pass 2 says what they are
        self.nets: list[_NetLine] = []
        self.env: dict[str, str] = {}
        self.timezones: dict[str, str] = {}
        self.family = _option_slug(options.family, "--family")
        self.caste = _option_slug(options.caste, "--caste")
        self.used_rules: set[int] = set()
        if options.timezone is not None:
            checked_zone(options.timezone, "--timezone")
        if options.reboot is not None and options.reboot not in REBOOT_KINDS:
            raise CrontabError(f"--reboot {options.reboot!r}: give service or oneshot")

    def run(self) -> Import:
        self._walk()
        self._services()
        automates = self._declare()
        declarations = [declaration for declaration, _ in automates]
        ordered = tuple(self.results[line.number] for line in self.lines)
        assert len(ordered) == len(self.lines)
        rules = self.options.mapping.rules if self.options.mapping is not None else ()
        return Import(
            lines=ordered,
            declarations=tuple(declarations),
            env=dict(self.env),
            env_file=self.options.env_file if self.env else None,
            family=self.family or UNCLASSIFIED,
            caste=self.caste or UNCLASSIFIED,
            timezones=self.timezones,
            unclassified=tuple(
                d["name"] for d in declarations if UNCLASSIFIED in (d["family"], d["caste"])
            ),
            unused_rules=tuple(
                f"rules[{i}] ({rule.command})"
                for i, rule in enumerate(rules)
                if i not in self.used_rules
            ),
            automates=tuple(automate for _, automate in automates),
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
        net = None
        if line.schedule == "@reboot":
            command = analyse_service(line.command, context)
        else:
            net = restart_net(line.command, context)
            command = net.start if net is not None else analyse(line.command, context)
        notes = _notes(line, command)

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
        if line.schedule == "@reboot":
            job = _Job(line, command, Kind.SERVICE, None, None, env_files, history)
            self.reboots.append(job)
            return None
        if net is not None:
            self.nets.append(_NetLine(line, net))
            return None
        cron = SPECIALS.get(line.schedule.removeprefix("@"), line.schedule)
        timezone = self._zone(variables)
        self._found(line, command, notes)
        self.jobs.append(_Job(line, command, Kind.RECURRING, cron, timezone, env_files, history))
        return None

    def _found(self, line: Line, command: Command, notes: tuple[str, ...]) -> None:
        """The class of a line that becomes a declaration: a job, or broken (then disabled)."""
        enabled = line.kind is LineKind.JOB
        if command.outcome is Outcome.BROKEN:
            notes = (*notes, _BROKEN_NOTE)
            self._result(line, LineClass.BROKEN, command.name, command.reason, notes, enabled)
        else:
            self._result(line, LineClass.JOB if enabled else LineClass.DISABLED_JOB, notes=notes)

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

    # --- pass 2: @reboot lines and restart nets ---------------------------------------------

    def _services(self) -> None:
        """Each @reboot line, with the restart nets that start the same command: a service;
        alone, what --reboot says it is, or a question. A net left over is a question too."""
        paired: set[int] = set()
        for job in self.reboots:
            matching = [
                n
                for n in self.nets
                if n.active == job.active
                and n.net.watches_start
                and n.net.start.argv == job.command.argv
            ]
            nets = [n for n in matching if n.line.number not in paired]
            paired.update(n.line.number for n in nets)
            notes = _notes(job.line, job.command)
            question = None
            if matching:
                kind = Kind.SERVICE
                lines = ", ".join(str(n.line.number) for n in matching)
                note = (
                    f"@reboot with its restart net (line {lines}): a service (kind: service); "
                    "sync keeps one instance running while it is enabled, and the layer "
                    "restarts it when it exits"
                )
            elif (declared := self._declared_kind(job.command.argv)) is not None:
                kind = declared  # the operator said what it is, by declaring it
                note = f"@reboot: declared as a {kind.value} automate"
            elif self.options.reboot is not None:
                kind = Kind(self.options.reboot)
                note = (
                    "@reboot: a service (--reboot service); sync keeps one instance running "
                    "while it is enabled, and the layer restarts it when it exits"
                    if kind is Kind.SERVICE
                    else "@reboot: a oneshot automate (--reboot oneshot); nothing runs it at "
                    "start-up: run `automates trigger NAME` when it is needed"
                )
            else:
                kind, note = Kind.SERVICE, ""
                question = (
                    "@reboot runs the command once when the machine starts, and no restart net "
                    "(`pgrep -f x || x`) for the same command says it is a loop: is it a "
                    "long-running service (--reboot service: kept running by the layer), or a "
                    "one-off at start-up (--reboot oneshot: run it with `automates trigger`)?"
                )
            if question is None and kind is Kind.SERVICE and job.command.timeout is not None:
                question = (
                    f"a service runs until it is stopped, and `timeout` would end it every "
                    f"{job.command.timeout} s for the layer to start it again: drop the "
                    "timeout, or is it a one-off (--reboot oneshot)?"
                )
            if question is not None:
                name = job.command.name
                self._result(job.line, LineClass.NEEDS_DECISION, name, question, notes, job.active)
                for net in nets:
                    self._result(
                        net.line,
                        LineClass.NEEDS_DECISION,
                        name,
                        f"the restart net of line {job.line.number}, which needs a decision",
                        _notes(net.line, net.net.start),
                        net.active,
                    )
                continue
            job.kind, job.nets = kind, tuple(n.line for n in nets)
            self._found(job.line, job.command, (note, *notes))
            for net in nets:
                self._result(
                    net.line,
                    LineClass.RESTART_NET,
                    notes=(
                        f"the restart net of line {job.line.number}: the layer restarts the "
                        "service itself now; nothing more is declared",
                    ),
                    enabled=net.active,
                )
            self.jobs.append(job)
        active = {j.command.argv: j.line.number for j in self.jobs if j.active}
        for net in self.nets:
            if net.line.number in paired:
                continue
            argv = net.net.start.argv
            if not net.active and argv in active:
                reason = (
                    f"an older form of the restart net of line {active[argv]}, which is "
                    "active: kept in the crontab's history only"
                )
                self._result(net.line, LineClass.DUPLICATE, net.net.start.name, reason, (), False)
                continue
            if net.net.watches_start:
                reason = (
                    f"a restart net: it starts {argv[0]} when `{net.net.watch}` finds no "
                    "process, and no @reboot line starts the same command: is it a long-running "
                    "service (declare it kind: service; the layer restarts it), or should each "
                    "tick be a run of its own?"
                )
            else:
                reason = (
                    f"a restart net whose check `{net.net.watch}` does not find the process it "
                    f"starts ({' '.join(argv) or 'a command it cannot read'}): which process "
                    "does it watch, and what should the layer run?"
                )
            notes = _notes(net.line, net.net.start)
            name = net.net.start.name
            self._result(net.line, LineClass.NEEDS_DECISION, name, reason, notes, net.active)

    def _declared_kind(self, argv: tuple[str, ...]) -> Kind | None:
        """The kind of a declaration that already runs this command once (service/oneshot)."""
        for automate in self.options.existing:
            if automate.command == argv and automate.kind in (Kind.SERVICE, Kind.ONESHOT):
                return automate.kind
        return None

    # --- pass 3: jobs grouped into declarations ---------------------------------------------

    def _declare(self) -> list[tuple[dict[str, Any], Automate]]:
        self.jobs.sort(key=lambda job: job.line.number)  # declarations in the crontab's order
        self._shared_locks()
        groups: dict[tuple[Kind, bool, tuple[str, ...], int | None], list[_Job]] = defaultdict(list)
        active: dict[tuple[str, ...], int] = {}
        for job in self.jobs:
            if job.active:
                active.setdefault(job.command.argv, job.line.number)
        for job in self.jobs:
            if not job.active and job.command.argv in active:
                self._result(
                    job.line,
                    LineClass.DUPLICATE,
                    reason=f"an older form of line {active[job.command.argv]}, which is "
                    "active: kept in the crontab's history only",
                    enabled=False,
                )
                for net in job.nets:
                    self._result(
                        net,
                        LineClass.DUPLICATE,
                        reason=f"the restart net of an older form of line "
                        f"{active[job.command.argv]}: kept in the crontab's history only",
                        enabled=False,
                    )
                continue
            if self._already_declared(job):
                continue
            groups[job.key].append(job)
        names = self._names(groups)
        declarations = []
        for key, jobs in groups.items():
            declaration = self._declaration(names[key], jobs)
            if declaration is not None:
                declarations.append(declaration)
        return declarations

    def _shared_locks(self) -> None:
        by_lock: dict[str, list[_Job]] = defaultdict(list)
        for job in self.jobs:
            if job.command.lock is not None:
                by_lock[job.command.lock].append(job)
        shared = {lock for lock, jobs in by_lock.items() if len({j.command.argv for j in jobs}) > 1}
        kept = []
        for job in self.jobs:
            if job.command.lock not in shared:
                kept.append(job)
                continue
            assert job.command.lock is not None
            others = [str(j.line.number) for j in by_lock[job.command.lock] if j is not job]
            for line in (job.line, *job.nets):
                self._result(
                    line,
                    LineClass.NEEDS_DECISION,
                    job.command.name,
                    f"shares the lock {job.command.lock} with line(s) {', '.join(others)}, so "
                    "they never ran at once; a concurrency policy holds one automate only: "
                    "accept that they may now overlap, or merge them into one script?",
                    self.results[line.number].notes,
                    line.kind is LineKind.JOB,
                )
        self.jobs = kept

    def _already_declared(self, job: _Job) -> bool:
        for automate in self.options.existing:
            if automate.command != job.command.argv:
                continue
            if job.kind is Kind.RECURRING:
                crons = {(s.form.expression, s.timezone) for s in automate.schedules}
                same = automate.kind is Kind.RECURRING and (job.cron, job.timezone) in crons
                question = (
                    f"{automate.name} already runs this command, on other schedules: add "
                    f"{job.cron!r} ({job.timezone}) to its schedules, or is it another job?"
                )
            else:
                same = automate.kind is job.kind
                question = (
                    f"{automate.name} already runs this command, as a {automate.kind.value} "
                    f"automate: is this line the same job ({job.kind.value}), or another?"
                )
            if same:
                self._result(
                    job.line,
                    LineClass.DUPLICATE,
                    automate.name,
                    f"already declared as {automate.name}",
                    enabled=job.active,
                )
                for net in job.nets:
                    self._result(
                        net,
                        LineClass.DUPLICATE,
                        automate.name,
                        f"the restart net of {automate.name}, already declared: the layer "
                        "restarts it",
                        enabled=job.active,
                    )
            else:
                for line in (job.line, *job.nets):
                    self._result(
                        line,
                        LineClass.NEEDS_DECISION,
                        job.command.name,
                        question,
                        enabled=job.active,
                    )
            return True
        return False

    def _names(
        self, groups: Mapping[tuple[Kind, bool, tuple[str, ...], int | None], list[_Job]]
    ) -> dict[tuple[Kind, bool, tuple[str, ...], int | None], str]:
        """Each group's slug; where two commands share one (or an existing declaration has it),
        a digest of the command (and of its kind and timeout, when not the plain recurring
        job) tells them apart, the same on every import."""
        base = {key: jobs[0].command.name for key, jobs in groups.items()}
        counts = Counter(base.values())
        taken = {a.name for a in self.options.existing}
        names = {}
        for key, name in base.items():
            if counts[name] > 1 or name in taken:
                kind, _active, argv, timeout = key
                text = "\0".join(argv)
                if kind is not Kind.RECURRING:
                    text += f"\0kind={kind.value}"
                if timeout is not None:
                    text += f"\0timeout={timeout}"
                digest = hashlib.sha1(text.encode()).hexdigest()[:6]
                name = f"{name[: 63 - 7]}-{digest}"
            names[key] = name
        return names

    def _declaration(self, name: str, jobs: list[_Job]) -> tuple[dict[str, Any], Automate] | None:
        first = jobs[0]
        broken = first.command.outcome is Outcome.BROKEN
        enabled = first.active and not broken
        schedules: list[dict[str, Any]] = []
        for job in jobs:
            if job.kind is Kind.RECURRING:
                assert job.cron is not None and job.timezone is not None
                schedule = {"slug": _schedule_slug(job.cron, job.timezone)}
                schedule |= {"cron": job.cron, "timezone": job.timezone}
            if job is not first and (job.kind is not Kind.RECURRING or schedule in schedules):
                for line in (job.line, *job.nets):
                    self._result(
                        line,
                        LineClass.DUPLICATE,
                        name,
                        f"the same job as line {first.line.number}",
                        enabled=job.active,
                    )
                continue
            if job.kind is Kind.RECURRING:
                schedules.append(schedule)
            merged = () if job is first else (f"merged with line {first.line.number}",)
            for line in (job.line, *job.nets):
                result = self.results[line.number]
                notes = result.notes + merged
                self.results[line.number] = replace(result, name=name, notes=notes)
        family, caste = self._family_caste(first.command.argv)
        declaration: dict[str, Any] = {
            "name": name,
            "kind": first.kind.value,
            "caste": caste,
            "family": family,
            "description": _description(first),
            "command": list(first.command.argv),
        }
        if schedules:
            declaration["schedules"] = schedules
        if first.command.timeout is not None:
            declaration["timeout_seconds"] = first.command.timeout
        if first.command.lock is not None:
            declaration["concurrency"] = "forbid"
        if first.env_files:
            declaration["env_files"] = list(first.env_files)
        if not enabled:
            declaration["enabled"] = False
        try:
            automate = Automate.model_validate(declaration)
        except ValidationError as error:
            detail = error.errors()[0]
            where, message = problem_of(detail["loc"], detail)
            for job in jobs:
                for line in (job.line, *job.nets):
                    self._result(
                        line,
                        LineClass.NEEDS_DECISION,
                        name,
                        f"the declaration is refused, field {where}: {message}",
                        enabled=job.active,
                    )
            return None
        return declaration, automate

    def _family_caste(self, argv: tuple[str, ...]) -> tuple[str, str]:
        """From the first mapping rule matching the command, else the options, else
        unclassified (reported)."""
        family, caste = self.family, self.caste
        mapping = self.options.mapping
        index = mapping.rule_for(argv) if mapping is not None else None
        if mapping is not None and index is not None:
            self.used_rules.add(index)
            rule = mapping.rules[index]
            family, caste = rule.family or family, rule.caste or caste
        return family or UNCLASSIFIED, caste or UNCLASSIFIED

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


def _notes(line: Line, command: Command) -> tuple[str, ...]:
    if line.kind is LineKind.JOB:
        return command.notes
    return ("commented out: declared disabled", *command.notes)


def _option_slug(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    if not SLUG.match(value) or len(value) > 63:
        raise CrontabError(
            f"{option} {value!r} is not a slug (lowercase letters, digits and inner hyphens)"
        )
    return value


def _schedule_slug(cron: str, timezone: str) -> str:
    digest = hashlib.sha1(f"{cron}|{timezone}".encode()).hexdigest()[:8]
    return f"cron-{digest}"


def _description(job: _Job) -> str:
    kept = "Imported from the crontab: " + _shown(job.line)
    for net in job.nets:
        kept += "\nRestart net, now done by the layer: " + _shown(net)
    if job.command.outcome is Outcome.BROKEN:
        kept += f"\nBroken at import: {job.command.reason}"
    if job.history:
        kept += "\nHistory: " + " / ".join(h for h in job.history if h)
    if len(kept) > MAX_STRING_CHARS:
        kept = kept[: MAX_STRING_CHARS - 20] + "... (cut)"
    return kept


def _shown(line: Line) -> str:
    return line.text.strip().lstrip("#").strip()
