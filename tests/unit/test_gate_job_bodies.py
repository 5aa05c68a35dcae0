"""The bodies of the gate's job endpoints: validated whole, each refusal with its reason."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from automates.gate.job_bodies import (
    END_MALFORMED,
    HOST_MAX_CHARS,
    HOST_REQUIRED,
    HOST_TOO_LONG,
    JobCall,
    JobEnd,
    JobStatus,
    why_refused,
)
from automates.store import browser_jobs


def _refusal(model: type[JobCall], body: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(body)
    return why_refused(caught.value)


def test_the_statuses_are_the_ones_a_job_ends_in() -> None:
    assert get_args(JobStatus) == browser_jobs.TERMINAL


def test_a_call_names_its_host_and_nothing_else() -> None:
    assert JobCall.model_validate_json(b'{"host": "home-1"}').host == "home-1"
    for body in [b"", b"not json", b"[1]", b"null", b"{}", b'{"host": 3}', b'{"host": null}']:
        assert _refusal(JobCall, body) == HOST_REQUIRED, body
    assert _refusal(JobCall, b'{"host": "h", "command": "id"}') == "fields no worker sends: command"


def test_a_host_is_taken_whole_up_to_any_dns_name_and_refused_beyond() -> None:
    # Never cut: the job is finished by the same, whole name that claimed it.
    longest = "h" * HOST_MAX_CHARS
    assert JobCall.model_validate_json(f'{{"host": "{longest}"}}'.encode()).host == longest
    assert _refusal(JobCall, f'{{"host": "{longest}x"}}'.encode()) == HOST_TOO_LONG
    too_long = f'{{"host": "{longest}x", "status": "done", "counters": {{}}}}'.encode()
    assert _refusal(JobEnd, too_long) == HOST_TOO_LONG


def test_an_end_is_a_terminal_status_an_optional_result_and_error_and_integer_counters() -> None:
    end = JobEnd.model_validate_json(b'{"host": "h", "status": "done", "counters": {"pages": 2}}')
    assert (end.status, end.result, end.error, end.counters) == ("done", None, None, {"pages": 2})
    for bad in [
        b'"status": "running", "counters": {}',
        b'"status": "done"',
        b'"status": "done", "counters": {"pages": true}',
        b'"status": "done", "counters": {"pages": "2"}',
        b'"status": "failed", "counters": {}, "result": [1]',
        b'"status": "failed", "counters": {}, "error": 5',
    ]:
        assert _refusal(JobEnd, b'{"host": "h", ' + bad + b"}") == END_MALFORMED, bad
    assert _refusal(JobEnd, b'{"status": "bad", "counters": {}}') == HOST_REQUIRED


def test_a_body_cannot_be_changed_once_validated() -> None:
    call = JobCall(host="h")
    with pytest.raises(ValidationError):
        call.host = "other"
