"""The body of a webhook call: a JSON object of flow parameters, validated whole.

Which parameters an automate takes is its deployment's parameter schema's business
(automates/server/runs.parameter_problems, which refuses the unknown ones); here the body must
only be an object, nested at most MAX_JSON_DEPTH deep. Unknown keys cannot be refused at this
level (`extra="forbid"` has no meaning for a mapping of any names).
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, RootModel, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from automates.platform.http_limits import MAX_JSON_DEPTH, Refused, json_depth

NOT_AN_OBJECT = "the body must be a JSON object of flow parameters"
TOO_DEEP = "parameters_too_deep"


class RunParameters(RootModel[dict[str, Any]]):
    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _shallow(self) -> RunParameters:
        if json_depth(self.root) > MAX_JSON_DEPTH:
            raise PydanticCustomError(
                TOO_DEEP,
                "parameters may nest at most {depth} levels deep",
                {"depth": MAX_JSON_DEPTH},
            )
        return self


def run_parameters(body: bytes) -> dict[str, Any]:
    """The parameters a call's `body` gives (none when it is empty); `Refused` (422) when it
    is not a JSON object or nests too deep."""
    try:
        return RunParameters.model_validate_json(body if body.strip() else b"{}").root
    except ValidationError as error:
        [problem, *_] = error.errors()
        # JSON nested past the parser's own limit (about 200) is refused as not an object.
        raise Refused(
            422, problem["msg"] if problem["type"] == TOO_DEEP else NOT_AN_OBJECT
        ) from None
