"""Error responses: one shape per kind, declared in the OpenAPI schema as they are sent.

Every error but 422 is ``{"detail": "message"}``. A 422 always has the validation-error shape
(``{"detail": [{"loc", "msg", "type"}]}``), whether pydantic or a handler found the problem, and
never echoes a large input back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

#: An input longer than this (as JSON) is left out of a 422's errors.
MAX_ECHO_CHARS = 200


class ErrorOut(BaseModel):
    detail: str


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not authenticated: no, an invalid, an expired or a revoked token",
    403: "Not allowed for this user",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflicts with the current state",
    413: "Request body too large",
    429: "Too many attempts: retry after Retry-After seconds",
    503: "Not available yet",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with the body it is sent with."""
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


#: What any authenticated route may answer besides its own errors.
AUTHENTICATED = errors(401, 403)


def unprocessable(loc: Sequence[str | int], msg: str, kind: str = "value_error") -> RequestValidationError:
    """A 422 raised by hand, with the same shape as pydantic's (raise the returned exception)."""
    return RequestValidationError([{"type": kind, "loc": tuple(loc), "msg": msg, "input": None}])


def _small(value: Any) -> bool:
    try:
        return len(json.dumps(jsonable_encoder(value))) <= MAX_ECHO_CHARS
    except (TypeError, ValueError):
        return False


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body, minus inputs too large to echo (a 50 MB string is not sent back)."""
    assert isinstance(exc, RequestValidationError)
    details = []
    for error in exc.errors():
        error = dict(error)
        if "input" in error and not _small(error["input"]):
            error.pop("input")
        if "ctx" in error and not _small(error["ctx"]):
            error.pop("ctx")
        details.append(error)
    return JSONResponse({"detail": jsonable_encoder(details)}, status_code=422)
