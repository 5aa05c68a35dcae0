"""What one cron command becomes under the guard: an argv, or why it cannot be one yet.

cron ran each command with `/bin/sh -c` in the user's home folder. The guard runs one
executable with its arguments, without a shell, in the checkout. A command translates when the
shell did nothing but split words, substitute the crontab's own variables and apply output
redirections; paths are made absolute as cron would have resolved them (the home folder for
relative paths, cron's PATH for bare names). What remains is either broken (its script or
executable does not exist: the argv is still given, with the missing path in it, so the job can
be declared disabled) or a question for the operator.

`analyse_service` reads an `@reboot` command as a long-running loop (a leading `nohup` and a
trailing `&` mean nothing under the layer, which keeps it running); a restart net's START is
read the same way (nets.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path, PurePosixPath

from automates.crontab.shell import REDIRECTIONS, ShellSyntaxError, Token, split
from automates.registry.model import MAX_TIMEOUT_SECONDS

CRON_DEFAULT_PATH = "/usr/bin:/bin"  # cron's PATH when the crontab sets none
_INTERPRETER = re.compile(r"^(python[\d.]*|node|nodejs|bash|sh|dash|zsh|perl|ruby|php)$")
_INLINE = {"python": "-c", "node": "-e", "perl": "-e", "ruby": "-e", "php": "-r", "sh": "-c"}
_TAKES_VALUE = {"python": {"-W", "-X"}, "node": {"-r", "--require"}}
_CRON_FIELD = re.compile(r"^[\d*][\d*/,-]*$")
_SLUG_CUT = 48
_DURATION = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TERM = {"TERM", "SIGTERM", "15"}
# The programs a restart net checks with (nets.py reads the nets themselves).
WATCHERS = frozenset({"pgrep", "pidof"})


class Outcome(StrEnum):
    READY = "ready"  # an argv the guard can run
    BROKEN = "broken"  # its script or executable does not exist
    DECISION = "decision"  # the operator must say what it should become
    UNPARSABLE = "unparsable"  # not even valid shell


@dataclass(frozen=True)
class Context:
    """What cron would have used to run a line."""

    home: Path  # cron's working folder and `~`
    path: str  # the PATH cron searches for bare names
    project_root: Path  # where the guard runs commands
    variables: Mapping[str, str]  # the crontab's variables in effect at the line (and HOME)
    wrapper: str = "ac_cron_wrapper.py"  # the old wrapper's file name


@dataclass(frozen=True)
class Command:
    outcome: Outcome
    name: str  # a stable slug derived from the command
    argv: tuple[str, ...] = ()
    lock: str | None = None  # the `flock -n` lock file
    notes: tuple[str, ...] = field(default=())
    reason: str | None = None  # BROKEN: what is missing; DECISION: the question
    timeout: int | None = None  # `timeout N`: the declaration's timeout_seconds


def analyse(command: str, context: Context) -> Command:
    try:
        parsed = split(command)
    except ShellSyntaxError as error:
        return Command(Outcome.UNPARSABLE, _slug([command]), reason=f"field command: {error}")
    return _Analysis(parsed.tokens, context, command).run()


def analyse_service(command: str, context: Context) -> Command:
    """A command started once and left running (`@reboot`, a restart net's START): a leading
    `nohup` and a trailing `&` are dropped, since the layer keeps a service running."""
    try:
        parsed = split(command)
    except ShellSyntaxError as error:
        return Command(Outcome.UNPARSABLE, _slug([command]), reason=f"field command: {error}")
    return service_from_tokens(list(parsed.tokens), context, command)


def service_from_tokens(tokens: list[Token], context: Context, command: str) -> Command:
    """`analyse_service` of a command already split (a restart net's START, nets.py)."""
    notes = []
    if tokens and tokens[-1].operator == "&":
        tokens = tokens[:-1]
        notes.append("ran in the background (&): a service's loop runs in its own run")
    if tokens and tokens[0].literal == "nohup":
        tokens = tokens[1:]
        notes.append("nohup dropped: the layer keeps the service running")
    analysis = _Analysis(tokens, context, command)
    analysis.notes.extend(notes)
    return analysis.run()


class _Question(Exception):
    def __init__(self, outcome: Outcome, reason: str) -> None:
        self.outcome = outcome
        self.reason = reason


class _Analysis:
    def __init__(self, tokens: Sequence[Token], context: Context, command: str) -> None:
        self.tokens = tokens
        self.context = context
        self.command = command
        self.notes: list[str] = []
        self.lock: str | None = None
        self.timeout: int | None = None
        self.missing: str | None = None  # the first thing found missing

    def run(self) -> Command:
        name = _slug([self.command])
        try:
            name = self._name(self._written())
            words = self._words()
            argv = self._argv(words)
        except _Question as question:
            return Command(question.outcome, name, notes=tuple(self.notes), reason=question.reason)
        outcome = Outcome.READY if self.missing is None else Outcome.BROKEN
        return Command(
            outcome, name, tuple(argv), self.lock, tuple(self.notes), self.missing, self.timeout
        )

    def _broken(self, reason: str) -> None:
        """Something the command runs is missing: it is still read to the end, so that it can
        be declared (disabled) with what cron ran."""
        if self.missing is None:
            self.missing = reason

    # --- the shell's part: operators, redirections, substitutions ---------------------------

    def _written(self) -> list[str]:
        """The words as written, variables by their name: what the name derives from, so it
        does not depend on the values of HOME or of the crontab's variables."""
        words, skip = [], False
        for token in self.tokens:
            if token.operator is not None:
                if token.operator not in REDIRECTIONS:
                    break
                skip = True
                continue
            if not skip:
                words.append("".join(p.text for p in token.parts).lstrip("~"))
            skip = False
        return [w for w in words if w] or [self.command]

    def _words(self) -> list[str]:
        words: list[str] = []
        tokens = list(self.tokens)
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token.operator is None:
                words.append(self._word(token))
                index += 1
                continue
            if token.operator not in REDIRECTIONS:
                raise _Question(Outcome.DECISION, self._shell_question(token.operator))
            target = tokens[index + 1] if index + 1 < len(tokens) else None
            if target is None or target.operator is not None:
                reason = f"field command: {token.operator} has no target"
                raise _Question(Outcome.UNPARSABLE, reason)
            self._redirection(token, self._word(target))
            index += 2
        if not words:
            raise _Question(Outcome.UNPARSABLE, "field command: nothing to run")
        if re.match(r"^[A-Za-z_]\w*=", words[0]):
            variable = words[0].split("=", 1)[0]
            raise _Question(
                Outcome.DECISION,
                f"the command sets {variable} for itself only; a declaration has no per-command "
                "variables: put it in an env file (env_files), or in a wrapper script?",
            )
        return words

    def _word(self, token: Token) -> str:
        if token.expansions:
            text = "".join(p.text for p in token.parts)
            if token.expansions == ("a ~ (the home folder)",) and re.match(r"^~(/|$)", text):
                token = Token(parts=token.parts)  # ~ is cron's HOME: known, not guessed
                word = self._word(token)
                return str(self.context.home) + word[1:]
            raise _Question(
                Outcome.DECISION,
                f"the shell would expand {token.expansions[0]} in {text!r}: the guard runs no "
                "shell; write the value out, or wrap the command in a script?",
            )
        text = ""
        for part in token.parts:
            if not part.variable:
                text += part.text
                continue
            value = self._variable(part.text)
            if value is None:
                raise _Question(
                    Outcome.DECISION,
                    f"the command uses ${part.text}, which the crontab does not set (it came from "
                    "cron's or the shell's environment): what value should the declaration "
                    "write?",
                )
            text += value
        return text

    def _variable(self, name: str) -> str | None:
        if name == "HOME":
            return self.context.variables.get("HOME", str(self.context.home))
        return self.context.variables.get(name)

    def _redirection(self, token: Token, target: str) -> None:
        operator, fd = token.operator, token.fd
        if operator in ("<", "<<", "<&"):
            raise _Question(
                Outcome.DECISION,
                f"the command reads its input from {target!r}; a guarded script gets no input: "
                "pass it as an argument, or wrap the command in a script?",
            )
        if fd not in (None, "1", "2"):
            raise _Question(Outcome.DECISION, f"the command redirects descriptor {fd}: why?")
        if operator in (">&", "&>") and target in ("1", "2"):
            return  # 2>&1: both streams already reach the run's log
        self.notes.append(
            f"output went to {target}; it now goes to the run's log in Prefect "
            "(redirection dropped)"
        )

    def _shell_question(self, operator: str) -> str:
        words = [t.literal or "" for t in self.tokens]
        if operator == "||" and WATCHERS & {PurePosixPath(w).name for w in words}:
            return (
                "a restart net: it starts a process when it is not running; with an @reboot "
                "line for the same command it is imported as a service (kind: service); alone, "
                "is that process a long-running service (declare it kind: service), or should "
                "each tick be a run of its own?"
            )
        if operator == "&":
            return (
                "the command runs in the background (&); under the guard a run lasts as long "
                "as its process: is it a service, or a job that should be waited for?"
            )
        return (
            f"the command is a shell construct ({operator}); the guard runs one executable "
            "without a shell: wrap it in a script, or declare it as [/bin/sh, -c, ...] "
            "(then nothing checks that its parts exist)?"
        )

    # --- what runs ---------------------------------------------------------------------------

    def _argv(self, words: list[str]) -> list[str]:
        words = self._without_prefixes(words)
        if _CRON_FIELD.match(words[0]) and not (self.context.home / words[0]).exists():
            raise _Question(
                Outcome.DECISION,
                f"{words[0]!r} looks like a sixth time field (seconds or year?), but cron reads "
                "five and runs it as the command: which schedule was meant?",
            )
        executable = self._resolve(words[0], "executable")
        program = PurePosixPath(words[0]).name
        wrapper = self._wrapper_index(words)
        if wrapper is not None:
            return self._unwrap(words, wrapper)
        if program in ("curl", "wget"):
            url = next((w for w in words[1:] if re.match(r"^https?://", w)), None)
            self.notes.append(f"an HTTP call to {url or 'an endpoint'}: now a guarded script")
            if program == "curl" and not {"-f", "--fail", "-sf", "-fsS", "-fs"} & set(words):
                self.notes.append("curl exits 0 on an HTTP error: add --fail so one fails the run")
            return [executable, *words[1:]]
        if _INTERPRETER.match(program):
            self._interpreted(words)
            self.notes.append(f"{program} ran outside any wrapper: it now runs under the guard")
            return [executable, *self._script_resolved(words)]
        return [executable, *words[1:]]

    def _without_prefixes(self, words: list[str]) -> list[str]:
        """The command under `flock -n LOCK` and `timeout N`, in any order."""
        while True:
            program = PurePosixPath(words[0]).name
            if program == "flock" and self.lock is None:
                words = self._without_flock(words)
            elif program == "timeout" and self.timeout is None:
                words = self._without_timeout(words)
            else:
                return words

    def _without_timeout(self, words: list[str]) -> list[str]:
        """`timeout [-k D] [-s TERM] [--foreground] DURATION command`: the guard's own
        timeout_seconds (SIGTERM to the process group, SIGKILL 5 s later)."""
        index, kill_after = 1, None
        while index < len(words) and words[index].startswith("-"):
            option, value = words[index], None
            if option == "--":
                index += 1
                break
            if option in ("-k", "--kill-after", "-s", "--signal"):
                value = words[index + 1] if index + 1 < len(words) else ""
                index += 2
            elif "=" in option and option.split("=", 1)[0] in ("--kill-after", "--signal"):
                option, value = option.split("=", 1)
                index += 1
            elif option == "--foreground":
                index += 1
                continue
            else:
                raise _Question(
                    Outcome.DECISION,
                    f"timeout is given {option}: only `timeout DURATION command` (with -k, "
                    "-s TERM or --foreground) maps to timeout_seconds; what is meant?",
                )
            if option in ("-k", "--kill-after"):
                kill_after = value
            elif value.upper() not in _TERM:
                raise _Question(
                    Outcome.DECISION,
                    f"timeout sends SIG{value.upper().removeprefix('SIG')} at the deadline; the "
                    "guard sends SIGTERM, then SIGKILL 5 s later: is that what is meant?",
                )
        rest = words[index:]
        if len(rest) < 2:
            raise _Question(Outcome.UNPARSABLE, "field command: timeout names no command")
        duration = _DURATION.match(rest[0])
        if duration is None:
            raise _Question(Outcome.DECISION, f"timeout {rest[0]!r} is not a duration: which?")
        seconds = float(duration["number"]) * _UNIT_SECONDS[duration["unit"]]
        if seconds != int(seconds):
            raise _Question(
                Outcome.DECISION,
                f"timeout {rest[0]} is not whole seconds, and timeout_seconds is: which?",
            )
        if not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
            what = "disables the timeout" if seconds == 0 else f"is {int(seconds)} s"
            raise _Question(
                Outcome.DECISION,
                f"timeout {rest[0]} {what}, and a run under the guard has a timeout of 1 to "
                f"{MAX_TIMEOUT_SECONDS} s (timeout_seconds): which, or split the job?",
            )
        self.timeout = int(seconds)
        self.notes.append(
            f"timeout {rest[0]}: now timeout_seconds: {self.timeout} (the run ends TimedOut: "
            "SIGTERM to its process group, SIGKILL 5 s later; no more exit 124)"
        )
        if kill_after is not None:
            self.notes.append(f"timeout -k {kill_after} dropped: the guard kills 5 s after SIGTERM")
        return rest[1:]

    def _without_flock(self, words: list[str]) -> list[str]:
        options, index = set(), 1
        while index < len(words) and words[index].startswith("-"):
            options.add(words[index])
            index += 1
        if options - {"-n", "--nonblock", "-x", "-e", "--exclusive"}:
            raise _Question(
                Outcome.DECISION,
                f"flock is given {' '.join(sorted(options))}: only `flock -n LOCK command` maps "
                "to a concurrency policy; which one is meant?",
            )
        if not options & {"-n", "--nonblock"}:
            raise _Question(
                Outcome.DECISION,
                "flock without -n waits for the lock, for as long as it takes: skip the run "
                "while one is active (concurrency forbid) or queue one (queue_one)?",
            )
        rest = words[index:]
        if len(rest) < 2 or rest[1] in ("-c", "--command"):
            raise _Question(
                Outcome.DECISION,
                "flock runs a shell string (-c), which the guard cannot run without a shell: "
                "wrap it in a script?",
            )
        self.lock = rest[0]
        self.notes.append(
            f"flock -n {rest[0]}: a run while another is active is skipped "
            "(concurrency forbid, the guard's own slot; no lock file)"
        )
        return rest[1:]

    def _wrapper_index(self, words: list[str]) -> int | None:
        for index in (0, 1):
            named = index < len(words) and PurePosixPath(words[index]).name == self.context.wrapper
            if named and (index == 0 or _INTERPRETER.match(PurePosixPath(words[0]).name)):
                return index
        return None

    def _unwrap(self, words: list[str], index: int) -> list[str]:
        wrapper = self._path(words[index])
        rest = words[index + 1 :]
        if not rest or rest[0].startswith("-"):
            given = rest[0] if rest else "no script"
            raise _Question(
                Outcome.DECISION,
                f"the old wrapper is given {given!r}: which script does it run, and with which "
                "declaration fields?",
            )
        script = Path(rest[0]) if rest[0].startswith("/") else wrapper.parent / rest[0]
        if not script.is_file():
            self._broken(f"the wrapper runs {script}, which does not exist")
            if index == 1:  # the wrapper ran it with this interpreter, as a restored one needs
                return [self._resolve(words[0], "interpreter"), str(script), *rest[1:]]
            return [str(script), *rest[1:]]
        self.notes.append(
            "ran through the old wrapper: the guard now does its work (timeout, retries, "
            "self-repair, soft-fail, crash journal, breaker); env files it loaded must be "
            "declared in env_files"
        )
        if os.access(script, os.X_OK):
            return [str(script), *rest[1:]]
        if index == 1:
            return [self._resolve(words[0], "interpreter"), str(script), *rest[1:]]
        raise _Question(
            Outcome.DECISION,
            f"{script} is not executable and the wrapper ran it with its own interpreter: "
            "which interpreter should run it?",
        )

    def _interpreted(self, words: list[str]) -> None:
        family = re.sub(r"[\d.]+$", "", PurePosixPath(words[0]).name)
        family = "sh" if family in ("bash", "dash", "zsh") else family
        family = "node" if family == "nodejs" else family
        index = 1
        while index < len(words) and words[index].startswith("-"):
            option = words[index]
            if option == _INLINE.get(family):
                raise _Question(
                    Outcome.DECISION,
                    f"{words[0]} {option} runs inline code; put it in a script file?",
                )
            if option == "-m" and family == "python":
                if index + 1 >= len(words):
                    raise _Question(Outcome.UNPARSABLE, "field command: -m names no module")
                self._module(words[index + 1], words[0])
                return
            index += 2 if option in _TAKES_VALUE.get(family, set()) else 1

    def _module(self, module: str, interpreter: str) -> None:
        relative = Path(*module.split("."))
        candidates = (relative.with_suffix(".py"), relative / "__init__.py", relative)

        def found(root: Path) -> bool:
            return any((root / c).exists() for c in candidates)

        if found(self.context.project_root):
            return
        python_path = self.context.variables.get("PYTHONPATH", "")
        if any(found(self._path(folder)) for folder in python_path.split(":") if folder):
            return  # the crontab's PYTHONPATH goes into the env file, so it still imports
        if found(self.context.home):
            raise _Question(
                Outcome.DECISION,
                f"-m {module} was imported from cron's working folder {self.context.home}; the "
                f"guard runs in the checkout {self.context.project_root}, where it does not "
                "import: add that folder to PYTHONPATH in an env file, or move the module?",
            )
        interpreter = self._resolve(interpreter, "interpreter")
        if _installed(interpreter, module.split(".")[0], str(self.context.home)):
            return
        self._broken(
            f"module {module} is found neither in {self.context.home}, in the checkout, nor "
            f"installed for {interpreter}"
        )

    def _script_resolved(self, words: list[str]) -> list[str]:
        """The interpreter's arguments, with its script (the first operand) made absolute."""
        family = re.sub(r"[\d.]+$", "", PurePosixPath(words[0]).name)
        index = 1
        while index < len(words) and words[index].startswith("-"):
            if words[index] == "-m":
                return words[1:]
            index += 2 if words[index] in _TAKES_VALUE.get(family, set()) else 1
        if index >= len(words):
            raise _Question(Outcome.DECISION, f"{words[0]} is given no script: what does it run?")
        script = self._path(words[index])
        if not script.is_file():
            self._broken(f"script {script} does not exist")
        return [*words[1:index], str(script), *words[index + 1 :]]

    def _resolve(self, word: str, what: str) -> str:
        """The executable's absolute path; if it is missing, recorded as broken and given as
        cron would have looked for it (the path, or the bare name)."""
        if "/" in word:
            path = self._path(word)
            if not path.is_file():
                self._broken(f"{what} {path} does not exist")
            elif not os.access(path, os.X_OK):
                self._broken(f"{what} {path} is not executable")
            return str(path)
        for folder in self.context.path.split(":"):
            candidate = Path(folder or ".") / word
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
        self._broken(f"{what} {word!r} is not on cron's PATH ({self.context.path})")
        return word

    def _path(self, word: str) -> Path:
        return Path(word) if word.startswith("/") else self.context.home / word

    # --- its name ---------------------------------------------------------------------------

    def _name(self, words: list[str]) -> str:
        """A slug from what the command runs: the wrapped or interpreted script (or module, or
        URL) and the arguments after it, never from where it lives, so it is stable."""
        words = _unprefixed(list(words))
        wrapper = self._wrapper_index(words)
        if wrapper is not None:
            return _slug(words[wrapper + 1 :] or words)
        program = PurePosixPath(words[0]).name
        if program in ("curl", "wget"):
            urls = [re.sub(r"^https?://", "", w) for w in words if re.match(r"^https?://", w)]
            return _slug(["http", *urls] if urls else words)
        if _INTERPRETER.match(program):
            rest = words[1:]
            while rest and rest[0].startswith("-") and rest[0] != "-m":
                rest = rest[1:]
            return _slug(rest[1:] if rest[:1] == ["-m"] else rest or words)
        return _slug(words)


def _unprefixed(words: list[str]) -> list[str]:
    """The words under `nohup`, `flock [-n] LOCK` and `timeout [options] DURATION`: what the
    name derives from."""
    while len(words) > 1:
        program = PurePosixPath(words[0]).name
        if program == "nohup":
            words = words[1:]
            continue
        if program not in ("flock", "timeout"):
            break
        index = 1
        while index < len(words) and words[index].startswith("-"):
            takes_value = program == "timeout" and words[index] in ("-k", "-s")
            index += 2 if takes_value else 1
        if len(words) <= index + 1:
            break
        words = words[index + 1 :]
    return words


@cache
def _installed(interpreter: str, package: str, home: str) -> bool:
    """Whether `interpreter` finds the top-level `package` installed (no import: find_spec of
    a top-level name only looks), run as cron would (HOME set, for user site-packages)."""
    if not re.fullmatch(r"[A-Za-z_]\w*", package):
        return False
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
    try:
        done = subprocess.run(
            [interpreter, "-E", "-c", probe, package],
            cwd="/",
            env={"HOME": home, "PATH": CRON_DEFAULT_PATH},
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _slug(words: Sequence[str]) -> str:
    parts = [PurePosixPath(words[0]).name, *words[1:]] if words else ["job"]
    parts[0] = re.sub(r"\.(py|sh|js|mjs|pl|rb|php|bash)$", "", parts[0])
    text = re.sub(r"[^a-z0-9]+", "-", " ".join(parts).lower()).strip("-") or "job"
    if len(text) > _SLUG_CUT:
        digest = hashlib.sha1(" ".join(words).encode()).hexdigest()[:8]
        text = f"{text[:_SLUG_CUT].rstrip('-')}-{digest}"
    return text
