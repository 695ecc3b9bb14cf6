"""Turns bad requests into a 4xx whose ``detail`` says what is wrong, in one readable line."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

_EXAMPLE = '{"context": ["hi"], "k": 3}'


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    bad_json = next((e for e in errors if e["type"] == "json_invalid"), None)
    if bad_json is not None:
        # FastAPI puts the character offset of the decoding error last in ``loc``.
        reason = bad_json.get("ctx", {}).get("error", "cannot decode")
        detail = f"request body is not valid JSON: {reason} (at character {bad_json['loc'][-1]})"
        return JSONResponse({"detail": detail}, status_code=status.HTTP_400_BAD_REQUEST)
    # ``input`` and ``ctx`` are left out: they can echo a huge body or hold exception objects.
    slim = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    return JSONResponse(
        {"detail": "; ".join(_describe(e) for e in errors), "errors": slim},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def _describe(error: dict[str, Any]) -> str:
    loc = list(error["loc"])
    if loc[:1] == ["body"]:
        loc = loc[1:]
    # ("context", 2) -> "context[2]"
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    if not where and error["type"] == "missing":
        return f"request body is missing: send a JSON object such as {_EXAMPLE}"
    if not where:
        return f"request body must be a JSON object such as {_EXAMPLE}"
    if error["type"] == "extra_forbidden":
        return f"unknown field '{where}'"
    return f"{where}: {error['msg']}"
