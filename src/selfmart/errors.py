"""One error hierarchy with stable codes, and the handlers that render every error alike.

Every error body is `{"error": code, "message": ..., "details": [...], "request_id": ...}`.
The console translates `error` (and each detail's `reason`) by code.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from selfmart.kit.context import current_request_id

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    field: str | None = None
    reason: str
    message: str | None = None


class ErrorBody(BaseModel):
    error: str
    message: str
    details: list[ErrorDetail] = []
    request_id: str | None = None


class AppError(Exception):
    status: int = 400
    code: str = "bad_request"
    message: str = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[ErrorDetail] | None = None,
        field: str | None = None,
        **extra: Any,
    ) -> None:
        self.message = message or type(self).message
        self.details = list(details or [])
        if field is not None:
            self.details.append(ErrorDetail(field=field, reason=self.code, message=self.message))
        self.extra = extra
        super().__init__(self.message)


class BadRequest(AppError):
    pass


class ValidationFailed(AppError):
    status, code, message = 422, "validation_error", "The request is not valid"


class Unauthorized(AppError):
    status, code, message = 401, "unauthorized", "Authentication required"


class Forbidden(AppError):
    status, code, message = 403, "forbidden", "You do not have permission to do this"


class NotFound(AppError):
    status, code, message = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, message = 409, "conflict", "Conflict with the current state"


class AlreadyExists(Conflict):
    code, message = "already_exists", "A record with this value already exists"


class IllegalTransition(Conflict):
    code, message = "illegal_transition", "This change is not allowed in the current state"


class InsufficientStock(Conflict):
    code, message = "insufficient_stock", "Not enough stock"


class TooManyRequests(AppError):
    status, code, message = 429, "too_many_requests", "Too many requests"


class PayloadTooLarge(AppError):
    status, code, message = 413, "payload_too_large", "The request body is too large"


class UnsupportedMediaType(AppError):
    status, code, message = 415, "unsupported_media_type", "Unsupported media type"


def error_body(code: str, message: str, details: list[ErrorDetail] | None = None) -> dict[str, Any]:
    """The error shape, for code that answers outside the exception handlers (middleware)."""
    return ErrorBody(
        error=code, message=message, details=details or [], request_id=current_request_id()
    ).model_dump()


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def validation_details(errors: Any) -> list[ErrorDetail]:
    out: list[ErrorDetail] = []
    for err in errors:
        out.append(
            ErrorDetail(
                field=_field_path(tuple(err.get("loc", ()))),
                reason=str(err.get("type")),
                message=str(err.get("msg")),
            )
        )
    return out


STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def unreadable_body(exc: StarletteHTTPException) -> ErrorDetail | None:
    """Starlette and FastAPI answer a body they cannot parse at all with a bare 400: bytes that
    are not UTF-8, JSON nested deeper than the parser's recursion limit, broken multipart. Like
    any other malformed body it is a 422 naming the body (nothing else raises a 400 here)."""
    if exc.status_code != 400:
        return None
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, UnicodeDecodeError):
        reason, message = "json_invalid", "The body is not valid UTF-8 JSON"
    elif isinstance(cause, RecursionError):
        reason, message = "json_invalid", "The body is nested too deeply"
    elif isinstance(cause, ValueError):
        reason, message = "json_invalid", "The body is not valid JSON"
    else:
        reason, message = "body_invalid", f"The body cannot be read: {exc.detail}"
    return ErrorDetail(field="body", reason=reason, message=message)


_PG_KEY = re.compile(r"Key \(([^)]+)\)=")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")


def integrity_conflict(exc: IntegrityError) -> AppError | None:
    """A unique or foreign-key violation the service did not foresee (two requests racing
    past the same check): 409 naming the column, not a 500. Other violations stay 500s: they
    mean input validation is missing."""
    orig = exc.orig
    cause = getattr(orig, "__cause__", None) or orig
    sqlstate = getattr(cause, "sqlstate", None) or getattr(orig, "sqlstate", None)
    text = str(orig)
    found = _PG_KEY.search(str(getattr(cause, "detail", "") or ""))
    columns = found.group(1) if found else None
    if sqlstate == "23505" or "UNIQUE constraint failed" in text:
        if columns is None and (m := _SQLITE_UNIQUE.search(text.strip())):
            columns = ", ".join(c.strip().rsplit(".", 1)[-1] for c in m.group(1).split(","))
        return AlreadyExists(field=columns or None)
    if sqlstate == "23503" or "FOREIGN KEY constraint failed" in text:
        return Conflict(
            "The record refers to one that does not exist, or is still referred to",
            field=columns or None,
        )
    return None


def database_unavailable(exc: Exception) -> bool:
    """The database connection was lost (a restart, a network cut) or the database could not be
    reached: a 503 the client may retry, not a 500."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # The asyncpg adapter raises a plain DBAPIError when the connection drops mid-statement
    # ("connection was closed in the middle of operation"): the message decides.
    return isinstance(exc, DBAPIError) and bool(_DISCONNECTED.search(str(exc.orig)))


#: Driver messages (asyncpg, aiosqlite) of a connection that is gone or never came.
_DISCONNECTED = re.compile(
    r"connection (?:is closed|was closed|refused|reset|does not exist)|"
    r"server closed the connection|terminating connection|cannot connect|"
    r"the database system is (?:starting up|shutting down)",
    re.IGNORECASE,
)


def database_busy(exc: Exception) -> bool:
    """SQLite's one writer lock was still held by another connection when the busy timeout
    (db.SQLITE_BUSY_TIMEOUT_MS) ran out: the request's transaction is rolled back, nothing was
    written, and the same request may be sent again, a 503 and not a 500 (seen on a machine so
    loaded that a racing writer held the lock past the timeout)."""
    return isinstance(exc, DBAPIError) and bool(_BUSY.search(str(exc.orig)))


#: sqlite3's message when the busy timeout runs out (the database, or a shared-cache table)
_BUSY = re.compile(r"database (?:table )?is locked", re.IGNORECASE)


_INT64_MAX = 2**63 - 1
#: asyncpg, binding a number its column type cannot hold
_PG_OUT_OF_RANGE = re.compile(
    r"invalid input for query argument \$\d+: (-?\d+) \(value out of int(?:16|32|64) range\)"
)


def out_of_range(request: Request, exc: Exception) -> ErrorDetail | None:
    """A number no column can hold that reached the database because its route left it
    unbounded (PostgreSQL: past 2**31-1 for an INTEGER column; both: past 2**63-1). The input
    bounds (kit.ids) are the fix; this keeps such a gap a 422 naming the parameter, not a 500."""
    text = str(getattr(exc, "orig", None) or exc)
    value: int | None
    if isinstance(exc, OverflowError) or "too large to convert to SQLite INTEGER" in text:
        value = None  # SQLite does not say which: any number past 64 bits
    elif m := _PG_OUT_OF_RANGE.search(text):
        value = int(m.group(1))
    else:
        return None

    def culprit(raw: object) -> bool:
        try:
            number = int(str(raw))
        except ValueError:
            return False
        return number == value if value is not None else abs(number) > _INT64_MAX

    candidates = [(f"path.{k}", v) for k, v in request.path_params.items()]
    candidates += [(f"query.{k}", v) for k, v in request.query_params.multi_items()]
    field = next((name for name, raw in candidates if culprit(raw)), "body")
    return ErrorDetail(field=field, reason="out_of_range", message="The number is out of range")


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if "retry_after" in exc.extra:
            headers["Retry-After"] = str(exc.extra["retry_after"])
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def request_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body(
                "validation_error", "The request is not valid", validation_details(exc.errors())
            ),
            422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        unreadable = unreadable_body(exc)
        if unreadable is not None:
            return JSONResponse(
                error_body("validation_error", "The request is not valid", [unreadable]), 422
            )
        code = STATUS_CODES.get(exc.status_code, "http_error")
        details = None
        if exc.status_code == 413:  # a streamed body cut off at its limit (BodyLimitMiddleware)
            details = [ErrorDetail(field="body", reason=code, message=str(exc.detail))]
        return JSONResponse(
            error_body(code, str(exc.detail), details),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(IntegrityError)
    async def integrity_error(_request: Request, exc: IntegrityError) -> JSONResponse:
        conflict = integrity_conflict(exc)
        if conflict is None:
            raise exc  # a 500, rendered and logged like any other unexpected error
        log.warning("integrity error answered %s: %s", conflict.status, conflict.details)
        return await app_error(_request, conflict)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(OverflowError)
    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        """A number no column holds (422), or a lost connection (503); anything else a 500."""
        detail = out_of_range(request, exc)
        if detail is None and database_unavailable(exc):
            # The request's transaction is gone with its connection: nothing was written, and
            # the same request may simply be sent again (terminals resend; intake is idempotent).
            log.warning("database connection lost or refused: %s", type(exc).__name__)
            return JSONResponse(
                error_body(
                    "database_unavailable",
                    "The database is unavailable for a moment; nothing was written, try again",
                ),
                503,
                headers={"Retry-After": "2"},
            )
        if detail is None and database_busy(exc):
            log.warning("database busy: the writer lock was not free in time")
            return JSONResponse(
                error_body(
                    "database_busy",
                    "The database is busy for a moment; nothing was written, try again",
                ),
                503,
                headers={"Retry-After": "1"},
            )
        if detail is None:
            raise exc  # a 500, rendered and logged like any other unexpected error
        log.warning("unbounded number reached the database: %s", detail.field)
        return JSONResponse(
            error_body("validation_error", "The request is not valid", [detail]), 422
        )

    @app.exception_handler(Exception)
    async def unhandled(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "Internal server error"), 500)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations for a route's error responses."""
    return {s: {"model": ErrorBody, "description": STATUS_CODES.get(s, "error")} for s in statuses}
