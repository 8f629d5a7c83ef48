"""One JSON error shape for every error the server returns, mapped from the error hierarchy in one place.

Shape: `{"error": {"type": "NotFoundError", "message": "...", "status": 404, "detail": [...]}}`. `detail` is
present for request validation errors (one entry per bad field, with its location). Pages get the same message
in an HTML error page instead. Programming errors become a 500 with a generic message (the traceback goes to
the server log, never to the client). A damaged or stuck database is a 503 (DatabaseError), also when SQLite
reports it (malformed, not a database, locked) or when it is raised in a middleware, outside the route handlers.
A damaged file the request names (a truncated checkpoint) is a 422, and so is what only hostile input causes (a
RecursionError from deep nesting, text with a lone surrogate).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from deepyard import db
from deepyard.errors import (
    Conflict,
    DamagedFileError,
    DatabaseError,
    DeepyardError,
    DiskFullError,
    Forbidden,
    IntegrityError,
    InvalidValueError,
    NotFoundError,
    SourceError,
)
from deepyard.limits import DEPTH_MAX

log = logging.getLogger("deepyard.web")


class AuthRequired(DeepyardError):
    """No valid session or API token, while users exist."""


class TooLarge(DeepyardError):
    """An upload over the size limit."""


STATUS: list[tuple[type[Exception], int]] = [  # first match wins: subclasses before their bases
    (AuthRequired, 401),
    (Forbidden, 403),
    (NotFoundError, 404),
    (Conflict, 409),
    (TooLarge, 413),
    (InvalidValueError, 422),
    (SourceError, 422),
    (DamagedFileError, 422),
    (IntegrityError, 500),
    (DatabaseError, 503),
    (DiskFullError, 507),
    (DeepyardError, 400),
]


def hostile_input(exc: Exception) -> InvalidValueError | None:
    """What only hostile input causes, as the 422 it is: data nested too deep for Python to recurse through, and
    text with a lone surrogate (JSON can spell "\\ud800", nothing can store it). Checks at the edges refuse both
    first (`deepyard.limits.check_data`); this is the net under them."""
    if isinstance(exc, RecursionError):
        return InvalidValueError(f"the request is nested too deeply to be read (at most {DEPTH_MAX} levels)")
    if isinstance(exc, UnicodeEncodeError) and "surrogate" in exc.reason:
        return InvalidValueError("the request has text that is not valid Unicode (a lone surrogate such as \\ud800)")
    return None


def status_for(exc: Exception) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 500)


def error_body(kind: str, message: str, status: int, detail: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "message": message, "status": status}
    if detail is not None:
        body["detail"] = detail
    return {"error": body}


def wants_html(request: Request) -> bool:
    """Pages (not under /api) asked for by a browser get an HTML error page."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _respond(request: Request, kind: str, message: str, status: int, detail: list[Any] | None = None) -> Response:
    if wants_html(request):
        from deepyard.web.templating import error_page  # here: templating imports security, which imports us

        return error_page(request, status, message)
    return JSONResponse(error_body(kind, message, status, detail), status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DeepyardError)
    async def _deepyard(request: Request, exc: DeepyardError) -> Response:
        return _respond(request, type(exc).__name__, str(exc), status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        detail = [
            {"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        message = "; ".join(f"{'.'.join(d['loc'])}: {d['message']}" for d in detail) or "invalid request"
        return _respond(request, "InvalidValueError", message, 422, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kinds = {404: "NotFoundError", 405: "MethodNotAllowed", 401: "AuthRequired", 403: "Forbidden"}
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such page or endpoint: {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return _respond(request, kinds.get(exc.status_code, "HTTPError"), message, exc.status_code)

    @app.exception_handler(RecursionError)
    @app.exception_handler(UnicodeEncodeError)
    async def _hostile(request: Request, exc: Exception) -> Response:
        known = hostile_input(exc)
        if known is None:
            return await _crash(request, exc)
        return _respond(request, type(known).__name__, str(known), status_for(known))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        # Starlette sends here what a middleware raises too (the handlers above only see the routes' errors)
        known = exc if isinstance(exc, DeepyardError) else db.database_error(request.app.state.settings, exc)
        if known is not None:
            return _respond(request, type(known).__name__, str(known), status_for(known))
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _respond(request, "InternalError", "internal server error (see the server log)", 500)
