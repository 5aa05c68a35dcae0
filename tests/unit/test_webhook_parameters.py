"""The body of a webhook call: a JSON object of parameters, nested only so deep."""

from __future__ import annotations

import pytest

from automates.platform.http_limits import Refused
from automates.webhook.parameters import NOT_AN_OBJECT, run_parameters


def _refusal(body: bytes) -> str:
    with pytest.raises(Refused) as caught:
        run_parameters(body)
    assert caught.value.status == 422
    return caught.value.detail


def test_an_object_gives_the_parameters_and_an_empty_body_none() -> None:
    assert run_parameters(b'{"greeting": "hi", "n": [1, {"a": null}]}') == {
        "greeting": "hi",
        "n": [1, {"a": None}],
    }
    assert run_parameters(b"") == {}
    assert run_parameters(b" \n") == {}


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", b"{", b"not json", b"\xff"])
def test_anything_but_an_object_is_refused(body: bytes) -> None:
    assert _refusal(body) == NOT_AN_OBJECT


def test_parameters_nest_at_most_32_levels() -> None:
    assert run_parameters(b'{"a": ' + b"[" * 31 + b"]" * 31 + b"}")  # 32 levels
    assert _refusal(b'{"a": ' + b"[" * 32 + b"]" * 32 + b"}") == (
        "parameters may nest at most 32 levels deep"
    )
    # Past the parser's own limit the body is refused too, before any recursion of ours.
    assert _refusal(b"[" * 60_000) == NOT_AN_OBJECT
