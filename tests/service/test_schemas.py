from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.schemas import RespondRequest


def test_string_context_is_split_into_turns_on_eot_and_eou_markers_are_dropped() -> None:
    request = RespondRequest.model_validate(
        {
            "context": "my wifi is down __eou__ __eot__ try a reboot __eou__ __eot__ "
            "did that __eou__ no luck __eou__ __eot__"
        }
    )
    assert request.context == ["my wifi is down", "try a reboot", "did that no luck"]


def test_list_context_is_kept_as_given() -> None:
    request = RespondRequest.model_validate({"context": ["hi", "hello  there"]})
    assert request.context == ["hi", "hello  there"]
    assert request.k == 5
    assert request.candidates is None


@pytest.mark.parametrize(
    "body",
    [
        {"context": ["hi"], "k": "3"},  # no str -> int coercion
        {"context": ["hi"], "k": 2.5},  # 2.0 is an integer in JSON Schema, 2.5 is not
        {"context": [3]},  # no int -> str coercion
        {"context": ["hi"], "candidates": "one"},
        {"context": ["hi"], "extra": 1},
    ],
)
def test_types_are_strict_and_unknown_fields_rejected(body: dict) -> None:
    with pytest.raises(ValidationError):
        RespondRequest.model_validate(body)
