"""Error responses: one shape per kind, declared in the OpenAPI schema as they are sent.

Every error but 422 is ``{"detail": "message"}``. A 422 always has the validation-error shape
(``{"detail": [{"loc", "msg", "type"}]}``), whether pydantic or a handler found the problem, and
never echoes a large input back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

#: An input longer than this (as JSON) is left out of a 422's errors.
MAX_ECHO_CHARS = 200


class ErrorOut(BaseModel):
    detail: str


#: FastAPI's own schema of a 422 body (every app with a parameter has it).
_VALIDATION = {
    "description": "Validation Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
}
_DESCRIPTIONS = {
    401: "Not authenticated: no, an invalid, an expired or a revoked token",
    403: "Not allowed for this user",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Request body too large",
    429: "Too many attempts: retry after Retry-After seconds",
    503: "Not available yet",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with the body it is sent with.

    422 is the validation-error shape (FastAPI declares it itself on routes with parameters)."""
    return {
        code: _VALIDATION if code == 422 else {"model": ErrorOut, "description": _DESCRIPTIONS[code]}
        for code in codes
    }


def text(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a 200 that is text (CSV, Prometheus, a stream), not JSON."""
    return {200: {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}}


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


def declare_common_errors(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI schema declare the errors every route of a kind may answer.

    Routes declare their own errors (404, 409, ...) with :func:`errors`; here, once for all: 401 and
    403 where a token is needed, 413 where a body is read (the body limit, ``app/middleware.py``).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
        body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                codes = [401, 403] if operation.get("security") else []
                codes += [413] if "requestBody" in operation else []
                for code in codes:
                    operation["responses"].setdefault(
                        str(code), {"description": _DESCRIPTIONS[code], "content": body}
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 with an ``Allow`` header naming every method of the path (Starlette names only one route's)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code != 405:
        return await http_exception_handler(request, exc)
    allowed: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(request.url.path):
            allowed |= route.methods
    headers = {"Allow": ", ".join(sorted(allowed))} if allowed else None
    return JSONResponse({"detail": exc.detail}, status_code=405, headers=headers)
