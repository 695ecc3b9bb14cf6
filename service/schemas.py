"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from chatbot.text import split_turns

# The documented ceilings of a request; the service's settings may lower them.
MAX_K = 50
MAX_TURNS = 50
MAX_CHARS = 10_000
MAX_CANDIDATES = 100

# Made by clients (the widget: a random UUID); letters, digits and a few separators.
SESSION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,100}$"
REQUEST_ID_PATTERN = r"^[0-9a-f]{32}$"
MAX_COMMENT_CHARS = 2000

# A text must hold something besides white space ("search" semantics: anywhere in it).
_NOT_BLANK = r"\S"
_TEXT = {"type": "string", "pattern": _NOT_BLANK, "maxLength": MAX_CHARS}

# Accepted as a list of turns or one UDC-layout string; always a list once validated.
Turns = Annotated[
    list[str],
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": _TEXT, "minItems": 1, "maxItems": MAX_TURNS},
                _TEXT,
            ],
            "description": "turns, oldest first, or one string with __eot__ between turns",
        }
    ),
]
Candidates = Annotated[
    list[str],
    WithJsonSchema({"type": "array", "items": _TEXT, "minItems": 1, "maxItems": MAX_CANDIDATES}),
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
    candidates: Candidates | None = Field(
        None,
        min_length=1,
        max_length=MAX_CANDIDATES,
        description="rank these texts instead of the response repository",
    )
    min_confidence: float | None = Field(
        None,
        ge=0,
        le=1,
        description="answer with the fallback text when the best reply's confidence is lower "
        "(default: the service's CHATBOT_MIN_CONFIDENCE)",
    )
    session_id: str | None = Field(
        None,
        pattern=SESSION_ID_PATTERN,
        description="keep the conversation on the server: send only the new message, and the "
        "session's earlier turns (and the bot's replies) come before it. An unknown or "
        "expired session starts afresh.",
    )

    @field_validator("min_confidence", mode="before")
    @classmethod
    def _integral_confidence(cls, value: Any) -> Any:
        # 0 and 1 are JSON integers; strict mode would refuse them as floats.
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("k", mode="before")
    @classmethod
    def _whole_float(cls, value: Any) -> Any:
        # JSON Schema counts 3.0 as an integer; a bool or "3" stays an error.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    @field_validator("context", mode="before")
    @classmethod
    def _split_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            _check_length(value, "context")
            # Markers alone ("__eot__") are one turn of text, not an empty context.
            return split_turns(value) or ([] if _blank(value) else [value])
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
        if len(turns) > MAX_TURNS:
            raise PydanticCustomError(
                "too_many_turns", f"{len(turns)} turns; at most {MAX_TURNS} are accepted"
            )
        _check_texts(turns, "turn")
        return turns

    @field_validator("candidates")
    @classmethod
    def _no_empty_candidates(cls, candidates: list[str] | None) -> list[str] | None:
        _check_texts(candidates or [], "candidate")
        return candidates


# What JSON Schema's (ECMAScript's) \s matches: a text of these alone is blank. Python's
# str.isspace also counts U+001C..U+001F and U+0085, which the published schema accepts.
_BLANK = re.compile(r"[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*")


def _blank(text: str) -> bool:
    """Blank by the published schema's rule.

    Example:
        >>> _blank(" \\t"), _blank("\\x85")
        (True, False)
    """
    return _BLANK.fullmatch(text) is not None


def _check_texts(texts: list[str], what: str) -> None:
    for i, text in enumerate(texts):
        if _blank(text):
            raise PydanticCustomError(f"empty_{what}", f"{what} {{index}} is empty", {"index": i})
        _check_length(text, f"{what} {i}")


def _check_length(text: str, what: str) -> None:
    if len(text) > MAX_CHARS:
        raise PydanticCustomError(
            "text_too_long",
            f"{what} has {len(text)} characters; at most {MAX_CHARS} are accepted",
        )


class ResponseItem(BaseModel):
    text: str
    score: float = Field(description="model score (a logit): higher is better")


class RespondResponse(BaseModel):
    request_id: str = Field(description="names this answer in POST /feedback")
    reply: str = Field(
        description="what to show: the best response, or the fallback text when abstained"
    )
    confidence: float = Field(
        ge=0,
        le=1,
        description="how likely the best response is the right one, calibrated on validation "
        "rows (GET /readyz says whether the model is calibrated; if not, σ(score))",
    )
    abstained: bool = Field(description="the confidence was below the threshold")
    session_id: str | None = Field(description="the session this answer belongs to, if any")
    responses: list[ResponseItem] = Field(description="best first")
    model: str = Field(
        description="the serving version that answered: the bundle version when serving a "
        "model repository, else the model's version"
    )
    took_ms: float


class ReadyResponse(BaseModel):
    status: str
    model: str = Field(description="the serving version (as in /respond answers)")
    model_version: str = Field(description="the version of its model artifact")
    calibrated: bool = Field(description="confidences come from curves fitted on validation rows")


class FeedbackRequest(BaseModel):
    """A user's vote on an answer of ``POST /respond``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"request_id": "0123456789abcdef0123456789abcdef", "vote": "down"}]
        },
    )

    request_id: str = Field(pattern=REQUEST_ID_PATTERN, description="from the /respond answer")
    vote: Literal["up", "down"]
    response: str | None = Field(
        None,
        max_length=MAX_CHARS,
        description="the reply voted on, one of the answer's responses (default: the best)",
    )
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)


class FeedbackResponse(BaseModel):
    id: int = Field(description="the stored feedback")
    duplicate: bool = Field(description="this vote was stored before; nothing new was written")


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="where: body, then the field path")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """What every 4xx and 5xx answer holds."""

    detail: str = Field(description="what is wrong, in one line")
    errors: list[ErrorItem] | None = Field(
        None, description="422 only: each problem of the request body"
    )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these status codes, each with the :class:`ErrorBody`."""
    reasons = {
        400: "the body is not valid JSON",
        401: "missing or wrong admin token",
        403: "admin endpoints are off (no admin token is configured)",
        404: "no such thing",
        409: "cannot be done in the service's current setup",
        413: "request body, turns, characters or candidates over the limit",
        422: "a field is missing or invalid",
        429: "too many requests from this client; see Retry-After",
        503: "not ready, overloaded, took too long, or the model failed",
    }
    return {code: {"model": ErrorBody, "description": reasons[code]} for code in codes}


class EditRequest(BaseModel):
    """Responses to add to and remove from the serving repository (exact texts, outer white
    space aside). Removals apply first, then additions."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"add": ["Try `sudo dhclient wlan0`."], "remove": []}]},
    )

    add: list[Annotated[str, Field(pattern=_NOT_BLANK)]] = Field(
        default_factory=list, description="texts to encode and add"
    )
    remove: list[str] = Field(default_factory=list, description="texts to remove")


class EditResponse(BaseModel):
    version: str = Field(description="the version with the edit, now serving")
    added: int
    removed: int
    unchanged: list[str] = Field(description="additions that were already there")
    not_found: list[str] = Field(description="removals that were not there")
    responses: int = Field(description="size of the edited repository")


class ReloadResponse(BaseModel):
    serving: str = Field(description="the version serving after the check")
    swapped: bool = Field(description="whether the check replaced the serving version")
    refused: dict[str, str] = Field(description="versions that failed to load, and why")


class StatusResponse(BaseModel):
    serving: str | None = Field(description="the serving version (None while loading)")
    model_version: str | None = Field(description="the serving model artifact's version")
    responses: int | None = Field(description="size of the serving repository")
    repository: str | None = Field(description="the model repository, when serving from one")
    pinned: str | None = Field(description="the version pinned by CHATBOT_VERSION")
    newest: str | None = Field(description="the newest version in the repository")
    poll_s: float
    swaps: int = Field(description="versions swapped in since start")
    spares: int = Field(description="compiled spare encoders, for new versions of a network")
    refused: dict[str, str] = Field(description="versions that failed to load, and why")
    not_ready: str = Field(description="why nothing serves yet (empty when serving)")
