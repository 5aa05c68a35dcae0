"""A crontab's raw lines, read with cron's own grammar.

cron reads a line as one of: blank, comment, environment setting (`NAME = value`), or job (five
time fields or an `@macro`, then a command). In the command, the first unescaped `%` ends it
(the rest is fed to its standard input, each further `%` a newline), and `\\%` is a literal
`%`. A `#` line that would be a valid job without its `#` is a commented-out job: in a legacy
crontab, that is history (cutovers, pauses), kept and never enabled.

The time fields are checked with python-crontab's `CronSlices`, which names the field and the
value it refuses; its own line parser is not used, because it silently drops what follows an
unescaped `%`, reads `*/0` lines as blank and a sixth field as part of the command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from crontab import SPECIALS, CronSlices

from automates.errors import AutomatesError
from automates.text_position import NotUtf8, utf8_text

# A crontab is read whole; a real one is a few KB. This bounds a wrong path (a log, a dump).
MAX_CRONTAB_BYTES = 16 * 1024 * 1024

FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_ENV = re.compile(r"^[ \t]*(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(?P<value>.*?)[ \t]*$")
_MACRO = re.compile(r"^[ \t]*@(?P<macro>\S*)(?:[ \t]+(?P<command>.*))?$")
# A time field's characters (numbers, * / , - ? L W # and the month and day names): a comment
# whose first five words are not all of them is prose, not a commented-out job.
_FIELD_LIKE = re.compile(
    r"^(?:[\d*?/,\-LW#]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
    r"|sun|mon|tue|wed|thu|fri|sat)+$",
    re.I,
)
_JOB = re.compile(
    r"^[ \t]*(?P<m>\S+)[ \t]+(?P<h>\S+)[ \t]+(?P<dom>\S+)[ \t]+(?P<mon>\S+)[ \t]+(?P<dow>\S+)"
    r"(?:[ \t]+(?P<command>.*))?$"
)


class CrontabError(AutomatesError):
    """The crontab cannot be read at all (missing, too large, not UTF-8); nothing was imported."""


class LineKind(StrEnum):
    BLANK = "blank"
    COMMENT = "comment"
    ENV = "env"
    JOB = "job"
    COMMENTED_JOB = "commented_job"
    UNPARSABLE = "unparsable"


@dataclass(frozen=True)
class Line:
    """One line of the crontab, as cron reads it."""

    number: int  # from 1
    text: str  # without its line end
    kind: LineKind
    schedule: str | None = None  # five fields joined by one space, or '@daily' etc.
    command: str | None = None  # up to the first unescaped %, with `\%` made `%`
    stdin: str | None = None  # what followed the first unescaped %, if anything
    name: str | None = None  # an environment line's variable
    value: str | None = None  # ... and its value, quotes removed
    comment: str | None = None  # a comment's text, without the leading '#'
    reason: str | None = None  # why an unparsable line cannot be read

    @property
    def is_job(self) -> bool:
        return self.kind in (LineKind.JOB, LineKind.COMMENTED_JOB)


def decode(data: bytes) -> list[str]:
    """The crontab's lines, without line ends (LF or CRLF). Refuses a file that is not UTF-8,
    naming the line and column of the first bad byte."""
    if len(data) > MAX_CRONTAB_BYTES:
        raise CrontabError(
            f"the crontab is larger than {MAX_CRONTAB_BYTES} bytes: is it a crontab? "
            "nothing was imported"
        )
    try:
        text = utf8_text(data)
    except NotUtf8 as bad:
        raise CrontabError(
            f"line {bad.line}, column {bad.column}: not UTF-8 (byte 0x{bad.byte:02x}); save the "
            "crontab as UTF-8; nothing was imported"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final line end does not start a line
    return [line.removesuffix("\r") for line in lines]


def parse(data: bytes) -> list[Line]:
    return [parse_line(number, text) for number, text in enumerate(decode(data), start=1)]


def parse_line(number: int, text: str) -> Line:
    stripped = text.strip()
    if not stripped:
        return Line(number, text, LineKind.BLANK)
    if stripped.startswith("#"):
        comment = stripped.lstrip("#").strip()
        job = _job(number, text, comment, prose_is_none=True)
        if job is not None and job.kind is LineKind.JOB:
            return Line(
                number,
                text,
                LineKind.COMMENTED_JOB,
                schedule=job.schedule,
                command=job.command,
                stdin=job.stdin,
                comment=comment,
            )
        return Line(number, text, LineKind.COMMENT, comment=comment)
    env = _ENV.match(text)
    if env is not None:
        return Line(number, text, LineKind.ENV, name=env["name"], value=_unquote(env["value"]))
    job = _job(number, text, text)
    if job is None:
        return _unparsable(number, text, "neither a job, a variable nor a comment")
    return job


def _job(number: int, text: str, body: str, prose_is_none: bool = False) -> Line | None:
    """`body` read as a job line; None if it does not even look like one (with
    `prose_is_none`, also when a time field holds a character no field can)."""
    macro = _MACRO.match(body)
    if macro is not None:
        name = macro["macro"].lower()
        if name not in SPECIALS:
            known = ", ".join(f"@{m}" for m in SPECIALS)
            return _unparsable(number, text, f"field schedule: unknown macro @{name} ({known})")
        return _with_command(number, text, f"@{name}", macro["command"])
    job = _JOB.match(body)
    if job is None:
        return None
    fields = [job["m"], job["h"], job["dom"], job["mon"], job["dow"]]
    if prose_is_none and not all(_FIELD_LIKE.match(f) for f in fields):
        return None
    problem = field_problem(fields)
    if problem is not None:
        return _unparsable(number, text, problem)
    return _with_command(number, text, " ".join(fields), job["command"])


def field_problem(fields: list[str]) -> str | None:
    """Which time field python-crontab refuses, and why; None if all five are valid."""
    try:
        CronSlices(" ".join(fields))
        return None  # the common case, read once; a refusal is then looked for field by field
    except (ValueError, KeyError):
        pass
    for index, value in enumerate(fields):
        alone = ["*"] * 5
        alone[index] = value
        try:
            CronSlices(" ".join(alone))
        except (ValueError, KeyError) as error:
            detail = str(error).strip("\"'")
            return f"field {FIELDS[index]}: {value!r} is not valid ({detail})"
    return None


def _with_command(number: int, text: str, schedule: str, raw: str | None) -> Line:
    if raw is None or not raw.strip():
        return _unparsable(number, text, "field command: the schedule is followed by no command")
    command, stdin = split_percent(raw.strip())
    if not command.strip():
        return _unparsable(number, text, "field command: empty before the first unescaped %")
    return Line(number, text, LineKind.JOB, schedule=schedule, command=command, stdin=stdin)


def split_percent(raw: str) -> tuple[str, str | None]:
    """cron's `%`: the command ends at the first unescaped one; what follows is its standard
    input, with each further unescaped `%` a newline. `\\%` is a literal `%` in both."""
    parts: list[str] = [""]
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "\\" and raw[index + 1 : index + 2] == "%":
            parts[-1] += "%"
            index += 2
            continue
        if char == "%":
            parts.append("")
        else:
            parts[-1] += char
        index += 1
    command = parts[0].rstrip()
    return command, ("\n".join(parts[1:]) if len(parts) > 1 else None)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _unparsable(number: int, text: str, reason: str) -> Line:
    return Line(number, text, LineKind.UNPARSABLE, reason=reason)
