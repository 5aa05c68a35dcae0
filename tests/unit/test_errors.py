"""The one wording of a validation error that names each field at fault."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, model_validator

from automates.errors import field_problems


class Inner(BaseModel):
    port: int


class Request(BaseModel):
    name: str
    inner: Inner

    @model_validator(mode="after")
    def _name_not_empty(self) -> Request:
        if not self.name:
            raise ValueError("name must not be empty")
        return self


def test_each_field_is_named_by_its_path() -> None:
    with pytest.raises(ValidationError) as caught:
        Request.model_validate({"inner": {"port": "x"}})
    assert field_problems(caught.value, "(request)") == (
        "field 'name': Field required; "
        "field 'inner.port': Input should be a valid integer, unable to parse string as an integer"
    )


def test_an_error_of_the_whole_model_is_named_by_what_it_is_about() -> None:
    with pytest.raises(ValidationError) as caught:
        Request.model_validate({"name": "", "inner": {"port": 1}})
    assert field_problems(caught.value, "(request)") == (
        "field '(request)': Value error, name must not be empty"
    )
