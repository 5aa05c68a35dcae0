"""Every raw line form of a crontab, read as cron reads it."""

from __future__ import annotations

import pytest

from automates.crontab.lines import CrontabError, LineKind, decode, parse, parse_line, split_percent

LONG = "x" * 10_000

# (line, kind, schedule, command, stdin)
FORMS = [
    ("", LineKind.BLANK, None, None, None),
    (" \t ", LineKind.BLANK, None, None, None),
    ("# cutover 2026-05: moved to nitro", LineKind.COMMENT, None, None, None),
    ("# 5 servers are down", LineKind.COMMENT, None, None, None),
    ("#@todo fix this", LineKind.COMMENT, None, None, None),
    ("*/5 * * * * /opt/a.sh", LineKind.JOB, "*/5 * * * *", "/opt/a.sh", None),
    ("*/5\t*\t*  * *\t/opt/a.sh  --x", LineKind.JOB, "*/5 * * * *", "/opt/a.sh  --x", None),
    ("1-5/2 */3 1,15 */2 1-5 b", LineKind.JOB, "1-5/2 */3 1,15 */2 1-5", "b", None),
    ("0 0 1 jan,feb mon-fri b", LineKind.JOB, "0 0 1 jan,feb mon-fri", "b", None),
    ("0 0 * JAN SUN b", LineKind.JOB, "0 0 * JAN SUN", "b", None),
    (
        "0-59/15 0-23/6 1-31/10 1-12/3 0-6/2 b",
        LineKind.JOB,
        "0-59/15 0-23/6 1-31/10 1-12/3 0-6/2",
        "b",
        None,
    ),
    ("@hourly /opt/a.sh", LineKind.JOB, "@hourly", "/opt/a.sh", None),
    ("@REBOOT /opt/loop.sh", LineKind.JOB, "@reboot", "/opt/loop.sh", None),
    ("@annually b", LineKind.JOB, "@annually", "b", None),
    ("#*/5 * * * * /opt/a.sh", LineKind.COMMENTED_JOB, "*/5 * * * *", "/opt/a.sh", None),
    (
        "## 0 3 * * * /opt/b.sh >> /l 2>&1",
        LineKind.COMMENTED_JOB,
        "0 3 * * *",
        "/opt/b.sh >> /l 2>&1",
        None,
    ),
    ("# @daily /opt/c.sh", LineKind.COMMENTED_JOB, "@daily", "/opt/c.sh", None),
    ("#0 0 * jan-jun Mon,fri b", LineKind.COMMENTED_JOB, "0 0 * jan-jun Mon,fri", "b", None),
    ("# 2023-01: change log entry 5 was long", LineKind.COMMENT, None, None, None),
    ("# 1 2 3 4 and five", LineKind.COMMENT, None, None, None),
    ("#61 * * * * /opt/a.sh", LineKind.COMMENT, None, None, None),
    ("0 3 * * * date +\\%Y-\\%m-\\%d", LineKind.JOB, "0 3 * * *", "date +%Y-%m-%d", None),
    (
        "0 3 * * * mail -s hi x%line one%line two",
        LineKind.JOB,
        "0 3 * * *",
        "mail -s hi x",
        "line one\nline two",
    ),
    ("0 3 * * * a \\%%b\\%", LineKind.JOB, "0 3 * * *", "a %", "b%"),
    ("0 3 * * * a # trailing", LineKind.JOB, "0 3 * * *", "a # trailing", None),
    ("1 2 3 4 5 6 seven", LineKind.JOB, "1 2 3 4 5", "6 seven", None),
    (f"0 3 * * * {LONG}", LineKind.JOB, "0 3 * * *", LONG, None),
    ("MAILTO=ops@example.org", LineKind.ENV, None, None, None),
    ("  PATH = /usr/bin:/bin  ", LineKind.ENV, None, None, None),
]


@pytest.mark.parametrize(("text", "kind", "schedule", "command", "stdin"), FORMS)
def test_line_forms(
    text: str, kind: LineKind, schedule: str | None, command: str | None, stdin: str | None
) -> None:
    line = parse_line(7, text)
    assert (line.number, line.kind, line.schedule, line.command, line.stdin) == (
        7,
        kind,
        schedule,
        command,
        stdin,
    )


@pytest.mark.parametrize(
    ("text", "name", "value"),
    [
        ("MAILTO=ops@example.org", "MAILTO", "ops@example.org"),
        ("  PATH = /usr/bin:/bin  ", "PATH", "/usr/bin:/bin"),
        ('GREETING="hello world"', "GREETING", "hello world"),
        ("EMPTY=''", "EMPTY", ""),
        ("CRON_TZ=Asia/Makassar", "CRON_TZ", "Asia/Makassar"),
    ],
)
def test_environment_lines(text: str, name: str, value: str) -> None:
    line = parse_line(1, text)
    assert (line.kind, line.name, line.value) == (LineKind.ENV, name, value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("*/0 * * * * x", "field minute: '*/0'"),
        ("60 * * * * x", "field minute: '60'"),
        ("* 24 * * * x", "field hour: '24'"),
        ("* * 0 * * x", "field day of month: '0'"),
        ("* * * 13 * x", "field month: '13'"),
        ("* * * foo * x", "field month: 'foo'"),
        ("* * * * 8 x", "field day of week: '8'"),
        ("5-1 * * * * x", "field minute: '5-1'"),
        ("@fortnightly x", "unknown macro @fortnightly"),
        ("0 3 * * *", "field command: the schedule is followed by no command"),
        ("@daily", "field command"),
        ("0 3 * * * %only input", "field command: empty before the first unescaped %"),
        ("garbage line here", "neither a job, a variable nor a comment"),
    ],
)
def test_unparsable_lines_name_the_field(text: str, reason: str) -> None:
    line = parse_line(3, text)
    assert line.kind is LineKind.UNPARSABLE
    assert line.reason is not None and reason in line.reason


def test_crlf_line_ends_and_a_final_newline_do_not_add_lines() -> None:
    lines = parse(b"A=1\r\n0 3 * * * /opt/a.sh\r\n\r\n")
    assert [(line.kind, line.command) for line in lines] == [
        (LineKind.ENV, None),
        (LineKind.JOB, "/opt/a.sh"),
        (LineKind.BLANK, None),
    ]
    assert lines[0].value == "1"


def test_a_file_without_final_newline_keeps_its_last_line() -> None:
    assert len(decode(b"# a\n0 3 * * * b")) == 2


def test_non_utf8_is_refused_with_its_line_and_column() -> None:
    with pytest.raises(CrontabError) as refused:
        parse(b"# ok\n\n0 3 * * * caf\xe9.sh\n")
    assert str(refused.value).startswith("line 3, column 14: not UTF-8 (byte 0xe9)")
    assert "nothing was imported" in str(refused.value)


@pytest.mark.parametrize(
    ("raw", "command", "stdin"),
    [
        ("a", "a", None),
        ("a%b", "a", "b"),
        ("a%b%c", "a", "b\nc"),
        ("a\\%b", "a%b", None),
        ("a\\b", "a\\b", None),  # cron touches only \%
        ("a %", "a", ""),
    ],
)
def test_percent(raw: str, command: str, stdin: str | None) -> None:
    assert split_percent(raw) == (command, stdin)
