"""One schedule of an automate: its form (cron, interval, one-off time or phrase) and timezone."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from automates.fields import FieldError, Frozen, Parameters, Timezone
from automates.registry.fields import Cron, Slug
from automates.scheduling.forms import Form, at_form, cron_form, every_form
from automates.scheduling.phrases import parse_phrase

_FORM_KEYS = frozenset({"cron", "every", "at", "when"})


def _rfc3339(form: Form) -> str:
    assert form.at is not None
    return form.at.isoformat().replace("+00:00", "Z")


class Schedule(Frozen):
    """One schedule of an automate, in an IANA timezone, in exactly one form: `cron`,
    `every` (an interval), `at` (a one-off RFC 3339 time) or `when` (a natural phrase,
    translated into one of the others; see automates/scheduling/phrases.py)."""

    slug: Slug = Field(default="default", description="Stable id of the schedule on the server.")
    cron: Cron | None = None
    every: str | None = Field(default=None, description="An interval: '15m', '2h', '1h30m'.")
    at: str | datetime | None = Field(
        default=None, description="A one-off time with its UTC offset: '2026-12-01T09:00+08:00'."
    )
    when: str | None = Field(default=None, description="A phrase: 'every weekday at 9'.")
    timezone: Timezone = "UTC"
    parameters: Parameters = Field(
        default_factory=dict, description="Flow parameters for runs of this schedule only."
    )

    @model_validator(mode="after")
    def _one_form(self) -> Schedule:
        given = [f for f in ("cron", "every", "at", "when") if getattr(self, f) is not None]
        if len(given) != 1:
            raise FieldError(
                "cron", f"give exactly one of cron, every, at or when (got {given or 'none'})"
            )
        field = given[0]
        try:
            if field == "when":
                assert self.when is not None
                phrase = parse_phrase(self.when)
                if phrase.relative:
                    raise ValueError(
                        f"{self.when!r} is relative to the moment it is read, so every load "
                        f"would move it; write at: '{_rfc3339(phrase.form)}' instead"
                    )
            else:
                self.form  # noqa: B018 - resolving is validating
        except ValueError as error:
            raise FieldError(field, str(error)) from None
        return self

    @model_serializer(mode="wrap")
    def _only_the_given_form(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A schedule is dumped with the one form key it was declared with, as it was before
        # `every`, `at` and `when` existed: stored declarations and digests stay the same.
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if k not in _FORM_KEYS or v is not None}

    @cached_property
    def form(self) -> Form:
        """The resolved form: what `when` became, or the form given."""
        if self.cron is not None:
            return cron_form(self.cron)
        if self.every is not None:
            return every_form(self.every)
        if self.at is not None:
            return at_form(self.at)
        assert self.when is not None
        return parse_phrase(self.when).form

    @property
    def became(self) -> str:
        """The echo shown to the operator: the phrase and the form it became."""
        if self.when is not None:
            return f"when {self.when!r} → {self.form.text}"
        return self.form.text
