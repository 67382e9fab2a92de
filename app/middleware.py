"""ASGI middleware every route goes through: the request body limit and the security headers.

The body limit runs before anything parses a body: a ``Content-Length`` over the limit is refused
at once, a chunked body as soon as what arrived passes it (413 either way), so a huge upload costs
neither memory nor event-loop time (the same loop runs call distribution). Text is checked too: a
lone surrogate (``"\\ud800"``) or invalid UTF-8 in a JSON body, or a NUL character in a JSON body, a
form, the query or the path, which no database (PostgreSQL) or response can take: 422.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, HTTPException, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import method_not_allowed, validation_error
from app.settings import Settings

#: Pages (the wallboard, and the other static pages) run only their own files: no inline script, no
#: other origin, never inside a frame.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: Everything else (JSON, CSV, metrics) is data, never a document that runs anything.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body passes the limit; FastAPI re-raises HTTP exceptions as they are."""

    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"Request body larger than {limit} bytes")


def _is_json(headers: Headers) -> bool:
    # A body without a content type is JSON to FastAPI unless strict content types are on: check it too.
    kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind in ("", "application/json") or (kind.startswith("application/") and kind.endswith("+json"))


def _is_form(headers: Headers) -> bool:
    return (
        headers.get("content-type", "").split(";", 1)[0].strip().lower()
        == "application/x-www-form-urlencoded"
    )


BAD_TEXT = "Text must be valid Unicode (UTF-8, no lone surrogate \\ud800-\\udfff) without NUL characters"


def _bad_text(value: Any) -> bool:
    """Whether a decoded JSON value holds a string no database can store."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_bad_text(k) or _bad_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_bad_text(v) for v in value)
    return False


def _nul_in_url_encoding(raw: bytes) -> bool:
    return b"%00" in raw.lower()


class BodyGuard:
    """Refuse request bodies over ``limit`` bytes (413) and text no database can store (422)."""

    def __init__(self, app: ASGIApp, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_limit = limit
        self.larger = larger or {}  # path -> limit, for the few routes that take files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.default_limit)
        headers = Headers(scope=scope)
        if _nul_in_url_encoding(scope.get("query_string", b"")) or _nul_in_url_encoding(
            scope.get("raw_path") or scope["path"].encode()
        ):
            await self._bad_text(scope, receive, send, "query")
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, BodyTooLarge(limit))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            checked = _is_json(headers) or _is_form(headers)
            if checked and scope.get("method") in ("POST", "PUT", "PATCH"):
                replay = await self._checked_body(counted, form=_is_form(headers))
                if replay is None:
                    await self._bad_text(scope, receive, send, "body")
                    return
                await self.app(scope, replay, tracked)
            else:
                await self.app(scope, counted, tracked)
        except BodyTooLarge as exc:
            if started:
                raise
            await self._refuse(scope, receive, send, exc)

    @staticmethod
    async def _checked_body(receive: Receive, form: bool) -> Receive | None:
        """Read the whole (bounded) JSON or form body; ``None`` if its text is refused, else its replay."""
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if form:
            if _nul_in_url_encoding(body):
                return None
        else:
            try:
                if _bad_text(json.loads(body)):
                    return None
            except UnicodeDecodeError:
                return None
            except ValueError:
                pass  # not JSON: the route says so in its own words
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, exc: BodyTooLarge) -> None:
        response = JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers={"Connection": "close"}
        )
        await response(scope, receive, send)

    @staticmethod
    async def _bad_text(scope: Scope, receive: Receive, send: Send, where: str) -> None:
        error = {"type": "string_unicode", "loc": [where], "msg": BAD_TEXT}
        await JSONResponse({"detail": [error]}, status_code=422)(scope, receive, send)


class SecurityHeaders:
    """Add the security headers to every response; pages get a strict CSP, data a stricter one.

    A response that sets its own CSP keeps it (the API docs page: see ``app/api/docs.py``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                # No content type: a 304 whose headers the browser merges into its cached copy of a page.
                kind = headers.get("content-type", "text/html")
                headers.setdefault(
                    "Content-Security-Policy", PAGE_CSP if kind.startswith("text/html") else DATA_CSP
                )
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI, settings: Settings, larger_bodies: dict[str, int] | None = None) -> None:
    """Put the guards around ``app`` (the body limit outermost) and the 422 handler in.

    ``larger_bodies``: path -> byte limit for the routes that take files (imports)."""
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, method_not_allowed)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyGuard, limit=settings.max_body_bytes, larger=larger_bodies)
