"""Every input of a declaration is bounded: the file, its YAML, its strings, lists and
parameters. Each refusal names the automate (or `<registry>`) and the field, and for the file
itself the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from automates.errors import DeclarationError, RunParametersError
from automates.limits import (
    MAX_AUTOMATES,
    MAX_COMMAND_ITEMS,
    MAX_LIST_ITEMS,
    MAX_PARAMETERS_BYTES,
    MAX_PARAMETERS_DEPTH,
    MAX_REGISTRY_BYTES,
    MAX_STRING_CHARS,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    parameters_problem,
)
from automates.registry.loader import load_registry, parse_registry
from automates.server.runs import parameter_problems, parameters_from_pairs
from tests.fixtures.projects import automate

# Nine levels of nine aliases: about 387 million strings once expanded.
ANCHOR_BOMB = """\
automates:
  - name: bomb
    kind: oneshot
    caste: vigies
    family: audits
    description: a billion laughs
    entrypoint: flows/hello.py:hello
    parameters:
      a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
      h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
      i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def file_problems(tmp_path: Path, content: str | bytes) -> list[tuple[str, str, str]]:
    path = tmp_path / "registry.yaml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(DeclarationError) as caught:
        load_registry(path)
    return [(p.automate, p.field, p.message) for p in caught.value.problems]


def problems_of(*automates: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(DeclarationError) as caught:
        parse_registry({"automates": list(automates)})
    return [(p.automate, p.field, p.message) for p in caught.value.problems]


def nested(depth: int) -> Any:
    """A value `depth` containers deep: [[...[1]...]]."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# -- the file --------------------------------------------------------------------------------


def test_an_anchor_bomb_is_refused_at_its_first_anchor(tmp_path: Path) -> None:
    [(name, field, message)] = file_problems(tmp_path, ANCHOR_BOMB)
    assert (name, field) == ("<registry>", "file")
    assert message.startswith("line 9, column 10: anchor &a:")
    assert "no YAML anchors or aliases" in message


def test_an_alias_alone_is_refused_with_its_line(tmp_path: Path) -> None:
    # An undefined alias would be a YAML error; this one is refused before it is resolved.
    text = "automates:\n  - name: x\n    parameters: {a: *nowhere}\n"
    [(_, field, message)] = file_problems(tmp_path, text)
    assert field == "file"
    assert message.startswith("line 3, column 21: alias *nowhere:")


def test_a_merge_key_needs_an_alias_so_it_is_refused(tmp_path: Path) -> None:
    text = "base: &base {kind: oneshot}\nautomates:\n  - <<: *base\n    name: x\n"
    [(_, _, message)] = file_problems(tmp_path, text)
    assert message.startswith("line 1, column 7: anchor &base:")


def test_a_file_over_the_size_bound_is_refused_before_parsing(tmp_path: Path) -> None:
    # Not even YAML: only its size is looked at.
    [(name, field, message)] = file_problems(tmp_path, b"\xff" * (MAX_REGISTRY_BYTES + 1))
    assert (name, field) == ("<registry>", "file")
    assert f"larger than {MAX_REGISTRY_BYTES} bytes" in message


def test_a_file_at_the_size_bound_is_read(tmp_path: Path) -> None:
    text = yaml.safe_dump({"automates": [automate("a1")]})
    text += "#" * (MAX_REGISTRY_BYTES - len(text.encode()))
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    assert [a.name for a in load_registry(path).automates] == ["a1"]


def test_a_path_that_never_ends_is_read_only_up_to_the_bound(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError) as caught:
        load_registry(Path("/dev/zero"))
    [problem] = caught.value.problems
    assert "larger than" in problem.message


def test_a_directory_is_reported_not_raised(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError) as caught:
        load_registry(tmp_path)
    [problem] = caught.value.problems
    assert problem.field == "file" and "cannot be read" in problem.message


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"automates:\n  - name: caf\xe9\n", "byte 0xe9 at line 2, column 14"),
        (b"# \xc3\xa9t\xc3\xa9\nautomates: [\xff]\n", "byte 0xff at line 2, column 13"),
        (b"automates:\n  - name: x\xc3", "byte 0xc3 at line 2, column 12"),  # truncated é
    ],
)
def test_bytes_that_are_not_utf8_are_reported_with_line_and_column(
    tmp_path: Path, content: bytes, where: str
) -> None:
    [(name, field, message)] = file_problems(tmp_path, content)
    assert (name, field) == ("<registry>", "file")
    assert message == f"not UTF-8: {where}; save the file as UTF-8"


def test_nesting_deeper_than_the_bound_is_refused_with_its_line(tmp_path: Path) -> None:
    # Deep enough that PyYAML's recursive composer would exhaust the stack.
    [(_, field, message)] = file_problems(tmp_path, "automates:\n  - " + "[" * 5000)
    assert field == "file"
    # Depth 1 is the document's mapping, 2 the list under `automates`, 3 the first `[`.
    column = 5 + MAX_YAML_DEPTH - 2
    assert message == f"line 2, column {column}: nested more than {MAX_YAML_DEPTH} levels deep"


def test_more_nodes_than_the_bound_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real bound takes seconds of parsing to reach; the count is the same at any bound.
    monkeypatch.setattr("automates.registry.loader.MAX_YAML_NODES", 1000)
    text = "automates: [" + "1," * 2000 + "]"
    [(_, field, message)] = file_problems(tmp_path, text)
    assert field == "file"
    # Nodes: the mapping, its key, the list, then 998 items; the next is at column 2007.
    assert message == "line 1, column 2007: more than 1000 YAML nodes"
    assert MAX_YAML_NODES == 100_000


def test_an_integer_too_long_to_convert_is_refused_with_its_line(tmp_path: Path) -> None:
    [(_, field, message)] = file_problems(tmp_path, "automates:\n  - retries: " + "9" * 5000)
    assert field == "file"
    assert message == "line 2, column 14: an integer of more than 64 characters"


def test_yaml_errors_still_name_the_file(tmp_path: Path) -> None:
    [(name, field, message)] = file_problems(tmp_path, "automates: [\n")
    assert (name, field) == ("<registry>", "file") and message.startswith("not YAML:")


def test_more_automates_than_the_bound_are_refused_before_any_is_validated() -> None:
    items = [{"name": f"a{i}"} for i in range(MAX_AUTOMATES + 1)]
    with pytest.raises(DeclarationError) as caught:
        parse_registry({"automates": items})
    assert [(p.automate, p.field, p.message) for p in caught.value.problems] == [
        (
            "<registry>",
            "automates",
            f"{MAX_AUTOMATES + 1} automates declared, at most {MAX_AUTOMATES} are accepted",
        )
    ]


# -- strings ---------------------------------------------------------------------------------


def test_a_huge_description_is_refused_on_its_field() -> None:
    assert problems_of(automate("a1", description="x" * 5_000_000)) == [
        ("a1", "description", f"String should have at most {MAX_STRING_CHARS} characters")
    ]


def test_a_description_at_the_bound_is_accepted() -> None:
    fields = {"description": "x" * MAX_STRING_CHARS}
    [a] = parse_registry({"automates": [automate("a1", **fields)]}).automates
    assert len(a.description) == MAX_STRING_CHARS


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"runbook": "d/" + "x" * MAX_STRING_CHARS}, "runbook"),
        ({"entrypoint": "x" * MAX_STRING_CHARS + ".py:f"}, "entrypoint"),
        ({"entrypoint": None, "command": ["x" * (MAX_STRING_CHARS + 1)]}, "command[0]"),
        ({"env_files": ["x" * (MAX_STRING_CHARS + 1)]}, "env_files[0]"),
        ({"schedules": [{"when": "every day " * 500}]}, "schedules[0].when"),
        ({"parameters": {"k" * (MAX_STRING_CHARS + 1): 1}}, "parameters"),
        ({"triggers": [{"event": "e" * (MAX_STRING_CHARS + 1)}]}, "triggers[0].event"),
    ],
)
def test_every_string_is_bounded(fields: dict[str, Any], field: str) -> None:
    (name, where, message), *_ = problems_of(automate("a1", **fields))
    assert name == "a1" and where.startswith(field)
    assert message == f"String should have at most {MAX_STRING_CHARS} characters"


def test_a_huge_name_is_refused_and_shown_cut() -> None:
    [(name, field, message)] = problems_of(automate("n" * 100_000, description="long name"))
    assert name == "n" * 100 + "... (100000 characters)"
    assert field == "name" and len(message) < 200


def test_a_long_slug_is_quoted_cut() -> None:
    [(_, field, message)] = problems_of(automate("a1", caste="c" * 1000))
    assert field == "caste"
    assert message.startswith(repr("c" * 60) + "... (1000 characters) is not a slug")


def test_a_timezone_too_long_for_a_file_name_is_a_problem_not_an_oserror() -> None:
    bad = automate("a1", schedules=[{"cron": "0 3 * * *", "timezone": "Europe/" + "x" * 300}])
    [(name, field, message)] = problems_of(bad)
    assert (name, field) == ("a1", "schedules[0].timezone")
    assert "is not an IANA timezone" in message and len(message) < 200


# -- lists -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "bound"),
    [
        ({"agents": [f"a{i}" for i in range(MAX_LIST_ITEMS + 1)]}, "agents", MAX_LIST_ITEMS),
        ({"environments": ["prod"] * (MAX_LIST_ITEMS + 1)}, "environments", MAX_LIST_ITEMS),
        ({"env_files": [".env"] * (MAX_LIST_ITEMS + 1)}, "env_files", MAX_LIST_ITEMS),
        ({"touches": ["money"] * (MAX_LIST_ITEMS + 1)}, "touches", MAX_LIST_ITEMS),
        (
            {"schedules": [{"slug": f"s{i}", "cron": "0 3 * * *"} for i in range(65)]},
            "schedules",
            MAX_LIST_ITEMS,
        ),
        (
            {"triggers": [{"event": f"e.{i}"} for i in range(MAX_LIST_ITEMS + 1)]},
            "triggers",
            MAX_LIST_ITEMS,
        ),
        (
            {"entrypoint": None, "command": ["x"] * (MAX_COMMAND_ITEMS + 1)},
            "command",
            MAX_COMMAND_ITEMS,
        ),
    ],
)
def test_every_list_is_bounded(fields: dict[str, Any], field: str, bound: int) -> None:
    [(name, where, message)] = problems_of(automate("a1", **fields))
    assert (name, where) == ("a1", field)
    assert f"at most {bound} items" in message


def test_a_command_at_the_bound_is_accepted() -> None:
    fields = {"entrypoint": None, "command": ["x"] * MAX_COMMAND_ITEMS}
    [a] = parse_registry({"automates": [automate("a1", **fields)]}).automates
    assert a.command is not None and len(a.command) == MAX_COMMAND_ITEMS


# -- parameters ------------------------------------------------------------------------------


def test_parameters_at_the_depth_bound_are_accepted() -> None:
    # The mapping itself is the first level.
    value = {"p": nested(MAX_PARAMETERS_DEPTH - 1)}
    [a] = parse_registry({"automates": [automate("a1", parameters=value)]}).automates
    assert a.parameters == value


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"parameters": {"p": nested(MAX_PARAMETERS_DEPTH)}}, "parameters"),
        (
            {"schedules": [{"cron": "0 3 * * *", "parameters": {"p": nested(20)}}]},
            "schedules[0].parameters",
        ),
        ({"triggers": [{"event": "e", "parameters": {"p": nested(20)}}]}, "triggers[0].parameters"),
    ],
)
def test_parameters_nested_too_deep_are_refused(fields: dict[str, Any], field: str) -> None:
    assert problems_of(automate("a1", **fields)) == [
        ("a1", field, f"nested more than {MAX_PARAMETERS_DEPTH} levels deep")
    ]


def test_parameters_too_large_as_json_are_refused() -> None:
    # Each string is within the string bound; together they are not.
    many = {f"k{i}": "v" * 1000 for i in range(70)}
    [(name, field, message)] = problems_of(automate("a1", parameters=many))
    assert (name, field) == ("a1", "parameters")
    assert message.endswith(f"bytes as JSON, at most {MAX_PARAMETERS_BYTES} are accepted")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_parameters_that_are_not_json_numbers_are_refused(number: float) -> None:
    [(_, field, message)] = problems_of(automate("a1", parameters={"x": [number]}))
    assert field == "parameters" and "is not a JSON number" in message


def test_a_deep_parameter_value_is_checked_without_recursion() -> None:
    assert parameters_problem({"p": nested(100_000)}) == "nested more than 10 levels deep"


def test_bounded_parameters_through_the_file(tmp_path: Path) -> None:
    deep = "{p: " + "[" * (MAX_PARAMETERS_DEPTH) + "]" * (MAX_PARAMETERS_DEPTH) + "}"
    text = yaml.safe_dump({"automates": [automate("a1")]}).replace(
        "  kind:", f"  parameters: {deep}\n  kind:", 1
    )
    [(name, field, message)] = file_problems(tmp_path, text)
    assert (name, field) == ("a1", "parameters") and "nested more than" in message


# -- parameters given on the command line (`automates trigger --param`, the webhook) ---------


def test_a_param_nested_past_json_s_own_recursion_is_refused_not_raised() -> None:
    with pytest.raises(RunParametersError, match="--param p: nested too deep to read"):
        parameters_from_pairs(["p=" + "[" * 100_000], None)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"p": nested(50)}, [("p", "nested more than 10 levels deep")]),
        ({"p": float("nan")}, [("p", "nan is not a JSON number (Prefect would store null)")]),
        (
            {"p": "v" * (MAX_PARAMETERS_BYTES + 1)},
            [("p", f"{MAX_PARAMETERS_BYTES + 10} bytes as JSON, at most 65536 are accepted")],
        ),
    ],
)
def test_given_parameters_are_bounded_before_the_schema_check(
    given: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    schema: dict[str, Any] = {"properties": {"p": {}}}
    assert parameter_problems(schema, {}, given) == expected


def test_given_parameters_within_the_bounds_go_to_the_schema_check() -> None:
    schema = {"properties": {"p": {"type": "integer"}}}
    assert parameter_problems(schema, {}, {"p": nested(3)})[0][0] == "p"
    assert parameter_problems(schema, {}, {"p": 3}) == []


def test_the_shipped_registry_is_well_inside_every_bound() -> None:
    from tests.conftest import REPO

    path = REPO / "deployments" / "registry.yaml"
    assert path.stat().st_size < MAX_REGISTRY_BYTES // 10
    registry = load_registry(path)
    assert len(registry.automates) < MAX_AUTOMATES // 10


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.env", "conf/../../x", "~/.env"])
def test_env_files_and_runbooks_stay_inside_the_checkout(path: str) -> None:
    for field in ("env_files", "runbook"):
        value: Any = [path] if field == "env_files" else path
        with pytest.raises(DeclarationError) as raised:
            parse_registry({"automates": [automate("a1", **{field: value})]})
        [problem] = raised.value.problems
        assert (problem.automate, problem.field.split("[")[0]) == ("a1", field)
        assert "inside the checkout" in problem.message
