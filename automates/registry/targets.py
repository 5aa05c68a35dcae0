"""What `automates preview` and `automates schedules` work on: the schedules of a declared
automate, or one schedule written on the command line (SPEC)."""

from __future__ import annotations

import re
from datetime import datetime

from croniter import croniter

from automates.errors import ScheduleSpecError
from automates.registry.model import Automate
from automates.scheduling.forms import Form, at_form, cron_form, every_form
from automates.scheduling.jitter import jitter_bound, stable_offset
from automates.scheduling.phrases import PhraseError, parse_phrase
from automates.scheduling.preview import PreviewSchedule

SPEC_SLUG = "spec"


def automate_schedules(automate: Automate) -> list[PreviewSchedule]:
    return [
        PreviewSchedule(
            slug=s.slug,
            form=s.form,
            timezone=s.timezone,
            offset_seconds=automate.jitter_offset(s),
            became=s.became,
        )
        for s in automate.schedules
    ]


def spec_form(spec: str, now: datetime) -> tuple[Form, str]:
    """A SPEC read as cron, an RFC 3339 time, a phrase, or 'every <duration>'; and the echo."""
    text = spec.strip()
    if len(text.split()) == 5 and croniter.is_valid(text):
        form = cron_form(text)
        return form, form.text
    if re.match(r"^\d{4}-\d{2}-\d{2}[T ]", text):
        try:
            form = at_form(text)
        except ValueError as error:
            raise ScheduleSpecError(str(error)) from None
        return form, form.text
    try:
        phrase = parse_phrase(text, now)
        return phrase.form, f"when {text!r} → {phrase.form.text}"
    except PhraseError as error:
        if text.lower().startswith("every "):
            try:
                form = every_form(text[6:])
                return form, form.text
            except ValueError:
                pass
        raise ScheduleSpecError(str(error)) from None


def spec_schedule(
    spec: str, *, timezone: str, jitter_seconds: int, now: datetime
) -> PreviewSchedule:
    form, became = spec_form(spec, now)
    offset = stable_offset(spec.strip(), SPEC_SLUG, jitter_bound(form, jitter_seconds))
    return PreviewSchedule(
        slug=SPEC_SLUG, form=form, timezone=timezone, offset_seconds=offset, became=became
    )
