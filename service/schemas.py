"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from chatbot.text import split_turns

MAX_K = 50

# Accepted as a list of turns or one UDC-layout string; always a list once validated.
Turns = Annotated[
    list[str],
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {"type": "string"},
            ],
            "description": "turns, oldest first, or one string with __eot__ between turns",
        }
    ),
]


class RespondRequest(BaseModel):
    """A conversation to answer, oldest turn first.

    ``context`` is a list of turns, or one string in UDC layout
    (``"hi __eou__ __eot__ hello __eou__ __eot__"``) that is split into turns on ``__eot__``.
    """

    # strict: a number where text belongs is a client bug worth reporting, not coercing.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"context": ["hi", "hello, any questions?"], "k": 3}]},
    )

    context: Turns
    k: int = Field(5, ge=1, le=MAX_K, description="how many responses to return")
    candidates: list[str] | None = Field(
        None, min_length=1, description="rank these texts instead of the response repository"
    )

    @field_validator("context", mode="before")
    @classmethod
    def _split_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return split_turns(value)
        if not isinstance(value, list):
            raise PydanticCustomError(
                "context_type", "must be a list of turns or a string with __eot__ markers"
            )
        return value

    @field_validator("context")
    @classmethod
    def _no_empty_turns(cls, turns: list[str]) -> list[str]:
        if not turns:
            raise PydanticCustomError("empty_context", "must hold at least one turn")
        _reject_blank(turns, "turn")
        return turns

    @field_validator("candidates")
    @classmethod
    def _no_empty_candidates(cls, candidates: list[str] | None) -> list[str] | None:
        _reject_blank(candidates or [], "candidate")
        return candidates


def _reject_blank(texts: list[str], what: str) -> None:
    for i, text in enumerate(texts):
        if not text.strip():
            raise PydanticCustomError(f"empty_{what}", f"{what} {{index}} is empty", {"index": i})


class ResponseItem(BaseModel):
    text: str
    score: float = Field(description="model score (a logit): higher is better")


class RespondResponse(BaseModel):
    responses: list[ResponseItem] = Field(description="best first")
    model: str = Field(description="version of the model that answered")
    took_ms: float
