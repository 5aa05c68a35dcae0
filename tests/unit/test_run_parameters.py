"""Parameters of a run started on request (`automates trigger`, the webhook), checked first."""

from __future__ import annotations

from typing import Any

import pytest

from automates.errors import RunParametersError
from automates.server.runs import parameter_problems, parameters_from_pairs

SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Parameters",
    "properties": {
        "greeting": {"type": "string", "title": "greeting", "default": "hi"},
        "count": {"type": "integer", "title": "count"},
        "dry": {"type": "boolean", "title": "dry", "default": False},
        "ids": {"type": "array", "items": {"type": "integer"}, "title": "ids", "default": []},
    },
    "required": ["count"],
}


@pytest.mark.parametrize(
    ("defaults", "given", "expected"),
    [
        ({"count": 1}, {}, []),
        ({}, {"count": 3, "greeting": "yo", "dry": True, "ids": [1, 2]}, []),
        ({}, {"greeting": "yo"}, [("count", "required, and the deployment has no default")]),
        ({"count": 1}, {"nope": 1}, [("nope", "no such parameter")]),
        ({"count": 1}, {"greeting": 5}, [("greeting", "5 is not of type 'string'")]),
        ({"count": 1}, {"ids": [1, "x"]}, [("ids[1]", "'x' is not of type 'integer'")]),
        ({}, {"count": "three"}, [("count", "'three' is not of type 'integer'")]),
    ],
)
def test_problems_name_each_parameter(
    defaults: dict[str, Any], given: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    found = parameter_problems(SCHEMA, defaults, given)
    assert [name for name, _ in found] == [name for name, _ in expected]
    for (_, message), (_, start) in zip(found, expected, strict=True):
        assert message.startswith(start), message


@pytest.mark.parametrize(
    ("pairs", "parameters"),
    [
        (["greeting=42"], {"greeting": "42"}),  # a string parameter takes the text as written
        (["greeting="], {"greeting": ""}),
        (["greeting=a=b"], {"greeting": "a=b"}),
        (["count=3", "dry=true", "ids=[1,2]"], {"count": 3, "dry": True, "ids": [1, 2]}),
        (["count=three"], {"count": "three"}),  # not JSON: left as text, for the schema check
        (["unknown=1"], {"unknown": 1}),
    ],
)
def test_command_line_pairs_become_parameters(pairs: list[str], parameters: dict[str, Any]) -> None:
    assert parameters_from_pairs(pairs, SCHEMA) == parameters


@pytest.mark.parametrize("pair", ["greeting", "=x", ""])
def test_a_pair_needs_a_name_and_a_value(pair: str) -> None:
    with pytest.raises(RunParametersError, match="expected NAME=VALUE"):
        parameters_from_pairs([pair], SCHEMA)
