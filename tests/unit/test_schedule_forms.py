"""Schedule forms: cron, every, at and natural phrases, each echoed as what it became."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from automates.errors import DeclarationError
from automates.registry.loader import parse_registry
from automates.registry.schedule import Schedule
from automates.scheduling.forms import FormKind, at_form, every_form, format_duration
from automates.scheduling.phrases import EXAMPLES, PhraseError, parse_phrase
from tests.fixtures.projects import automate

NOW = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)

PHRASES = {
    "every 15 minutes": "cron '*/15 * * * *'",
    "every minute": "cron '* * * * *'",
    "every 7 minutes": "every '7m'",
    "every 2 hours": "cron '0 */2 * * *'",
    "every 5 hours": "every '5h'",
    "every hour": "cron '0 * * * *'",
    "hourly": "cron '0 * * * *'",
    "hourly at :30": "cron '30 * * * *'",
    "every day": "cron '0 0 * * *'",
    "every 3 days": "every '3d'",
    "every weekday at 9": "cron '0 9 * * 1-5'",
    "on weekdays at 7:45": "cron '45 7 * * 1-5'",
    "every weekend at 10:00": "cron '0 10 * * 0,6'",
    "daily at 18:30": "cron '30 18 * * *'",
    "Daily at 6pm": "cron '0 18 * * *'",
    "every day at noon": "cron '0 12 * * *'",
    "every monday at 04:00": "cron '0 4 * * 1'",
    "every monday and thursday at 9am": "cron '0 9 * * 1,4'",
    "every mon, wed and fri at 6pm": "cron '0 18 * * 1,3,5'",
    "weekly on sunday at midnight": "cron '0 0 * * 0'",
    "twice daily at 9 and 18": "cron '0 9,18 * * *'",
    "three times daily at 8, 12 and 18": "cron '0 8,12,18 * * *'",
    "first day of each month": "cron '0 0 1 * *'",
    "first day of every month at 06:00": "cron '0 6 1 * *'",
    "monthly at 3": "cron '0 3 1 * *'",
    "in 2 hours": "at '2026-11-22T05:00:00Z'",
    "in 45 minutes": "at '2026-11-22T03:45:00Z'",
}


@pytest.mark.parametrize(("phrase", "became"), PHRASES.items())
def test_each_phrase_becomes_one_form(phrase: str, became: str) -> None:
    assert parse_phrase(phrase, NOW).form.text == became


def test_every_example_offered_in_suggestions_parses() -> None:
    for example in EXAMPLES:
        parse_phrase(example, NOW)


@pytest.mark.parametrize(
    ("phrase", "hint"),
    [
        ("evry 15 minutes", "did you mean 'every 15 minutes'?"),
        ("every weekdya at 9", "did you mean 'every weekday at 9'?"),
        ("dialy at 18:30", "did you mean 'daily at 18:30'?"),
        ("whenever you like", "'every 15 minutes'"),
        ("daily at 25:00", "'25:00' is not a time of day"),
        ("daily at 13pm", "between 1 and 12"),
        ("twice daily at 9 and 18:30", "declare one schedule per time"),
        ("twice daily at 9, 12 and 18", "names 3 times of day, not 2"),
    ],
)
def test_an_unreadable_phrase_fails_with_a_suggestion(phrase: str, hint: str) -> None:
    with pytest.raises(PhraseError) as raised:
        parse_phrase(phrase, NOW)
    assert hint in str(raised.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("2h", 7200), ("1h30m", 5400), ("90s", 90), ("1d", 86400), ("15 minutes", 900)],
)
def test_every_reads_durations(text: str, seconds: int) -> None:
    assert every_form(text).every_seconds == seconds


@pytest.mark.parametrize("text", ["", "5x", "fast", "0m", "15"])
def test_every_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|unit"):
        every_form(text)


def test_format_duration_round_trips() -> None:
    assert [format_duration(s) for s in (900, 5400, 86400, 90061)] == [
        "15m",
        "1h30m",
        "1d",
        "1d1h1m1s",
    ]


def test_at_is_rfc3339_with_an_offset_and_kept_in_utc() -> None:
    form = at_form("2026-12-01T09:00:00+08:00")
    assert form.kind is FormKind.AT and form.at == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert form.text == "at '2026-12-01T01:00:00Z'"
    with pytest.raises(ValueError, match="no UTC offset"):
        at_form("2026-12-01T09:00:00")
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        at_form("next tuesday")


@pytest.mark.parametrize(
    ("fields", "became"),
    [
        ({"cron": "0 3 * * *"}, "cron '0 3 * * *'"),
        ({"every": "1h30m"}, "every '1h30m'"),
        ({"at": "2026-12-01T09:00:00+08:00"}, "at '2026-12-01T01:00:00Z'"),
        ({"at": datetime(2026, 12, 1, 1, tzinfo=UTC)}, "at '2026-12-01T01:00:00Z'"),
        ({"when": "every weekday at 9"}, "when 'every weekday at 9' → cron '0 9 * * 1-5'"),
    ],
)
def test_a_declared_schedule_echoes_what_it_became(fields: dict[str, Any], became: str) -> None:
    assert Schedule(**fields).became == became


def problems(*schedules: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(DeclarationError) as raised:
        parse_registry({"automates": [automate("a1", schedules=list(schedules))]})
    return [(p.automate, p.field, p.message) for p in raised.value.problems]


def test_a_bad_phrase_in_a_declaration_names_automate_field_and_suggestion() -> None:
    [(name, field, message)] = problems({"when": "evry 15 minutes"})
    assert (name, field) == ("a1", "schedules[0].when")
    assert "did you mean 'every 15 minutes'?" in message


def test_a_relative_phrase_in_a_declaration_is_refused_with_the_at_it_would_be() -> None:
    [(name, field, message)] = problems({"when": "in 2 hours"})
    assert (name, field) == ("a1", "schedules[0].when")
    assert "every load would move it; write at: '" in message


@pytest.mark.parametrize(
    ("schedule", "field", "fragment"),
    [
        ({"cron": "0 3 * * *", "every": "1h"}, "schedules[0].cron", "exactly one of"),
        ({"timezone": "UTC"}, "schedules[0].cron", "exactly one of"),
        ({"every": "soon"}, "schedules[0].every", "not a duration"),
        ({"at": "2026-12-01 09:00"}, "schedules[0].at", "no UTC offset"),
        ({"cron": "0 3 * *"}, "schedules[0].cron", "5-field"),
    ],
)
def test_declaration_errors_name_the_field(
    schedule: dict[str, Any], field: str, fragment: str
) -> None:
    [(name, found, message)] = problems(schedule)
    assert (name, found) == ("a1", field) and fragment in message


def test_all_forms_load_from_one_registry() -> None:
    registry = parse_registry(
        {
            "automates": [
                automate(
                    "a1",
                    schedules=[
                        {"slug": "c", "cron": "0 3 * * *"},
                        {"slug": "e", "every": "15m", "timezone": "Asia/Makassar"},
                        {"slug": "t", "at": "2026-12-01T09:00:00Z"},
                        {"slug": "w", "when": "twice daily at 9 and 18"},
                    ],
                )
            ]
        }
    )
    kinds = [s.form.kind for s in registry.automates[0].schedules]
    assert kinds == [FormKind.CRON, FormKind.EVERY, FormKind.AT, FormKind.CRON]
