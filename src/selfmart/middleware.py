"""ASGI middleware: request id, client address, security headers, request body limits,
control characters in paths and query strings."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from selfmart.errors import ErrorDetail, error_body
from selfmart.kit.context import set_request
from selfmart.kit.schema import CONTROL

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'",
    ),
]


class RequestContextMiddleware:
    """Gives every request an id (or keeps a sane X-Request-ID) and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ua = ""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                given = value.decode("latin-1")
            elif name == b"user-agent":
                ua = value.decode("latin-1")[:500]
        # 32 random hex digits, as uuid4().hex was, at a third of its cost (no UUID object)
        request_id = given if _SAFE_ID.match(given) else os.urandom(16).hex()
        client = scope.get("client")
        set_request(request_id, client[0] if client else None, ua or None)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                raw.append((b"x-request-id", request_id.encode()))
                existing = {k.lower() for k, _ in raw}
                raw.extend(h for h in SECURITY_HEADERS if h[0] not in existing)
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` once a body passes its limit. FastAPI re-raises HTTPExceptions met
    while it reads a body, so the error handler renders it as 413 payload_too_large."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes")
        self.limit = limit


class BodyLimitMiddleware:
    """Refuses request bodies above a limit with 413 before reading them: at once when the
    Content-Length says so, else as soon as the streamed (chunked) body passes it.

    `by_path` maps path prefixes ("*" = one segment) to their own limit; the longest wins.
    """

    def __init__(self, app: ASGIApp, *, limit: int, by_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        rules = sorted((by_path or {}).items(), key=lambda kv: len(kv[0]), reverse=True)
        self.rules = [(_prefix_pattern(prefix), n) for prefix, n in rules]

    def limit_for(self, path: str) -> int:
        for pattern, n in self.rules:
            if pattern.match(path):
                return n
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            # read outside FastAPI's body parsing (a route streaming the body itself)
            if started:
                raise
            await _refuse(scope, receive, send, limit)


def _prefix_pattern(prefix: str) -> re.Pattern[str]:
    parts = (re.escape(p) if p != "*" else "[^/]+" for p in prefix.split("/"))
    return re.compile("^" + "/".join(parts))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    message = f"The request body is larger than {limit} bytes"
    detail = ErrorDetail(field="body", reason="payload_too_large", message=message)
    body = error_body("payload_too_large", message, [detail])
    # the unread body stays on the wire: the connection cannot serve another request
    response = JSONResponse(body, 413, headers={"connection": "close"})
    await response(scope, receive, send)


class ControlCharacterGuardMiddleware:
    """Refuses a control character (kit.schema.CONTROL: NUL, escape, line breaks...) in the
    path or a query parameter with a 422 naming where it is: PostgreSQL cannot take a NUL in
    text (a 500), and none belongs in an id, a filter or a search. Request bodies are
    guarded by kit.schema.InSchema."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            details = _control_details(scope)
            if details:
                body = error_body("validation_error", "The request is not valid", details)
                await JSONResponse(body, 422)(scope, receive, send)
                return
        await self.app(scope, receive, send)


#: A control character in a raw query string, as it is or percent-encoded.
_RAW_CONTROL = re.compile(rb"[\x00-\x1f\x7f]|%[01][0-9a-fA-F]|%7[fF]")


def _problem(text: str) -> tuple[str, str] | None:
    found = CONTROL.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "nul_character", "must not contain NUL (\\x00) characters"
    return "control_character", f"must not contain control characters (found {found.group()!r})"


def _control_details(scope: Scope) -> list[ErrorDetail]:
    out: list[ErrorDetail] = []
    problem = _problem(scope.get("path", ""))
    if problem is not None:
        out.append(ErrorDetail(field="path", reason=problem[0], message=problem[1]))
    query = scope.get("query_string", b"")
    if _RAW_CONTROL.search(query):
        text = query.decode("latin-1")
        for name, value in parse_qsl(text, keep_blank_values=True, errors="replace"):
            problem = _problem(name) or _problem(value)
            if problem is not None:
                field = "query." + CONTROL.sub("", name)
                out.append(ErrorDetail(field=field, reason=problem[0], message=problem[1]))
    return out


class MaintenanceMiddleware:
    """While maintenance mode is on (selfmart.maintenance), refuses writes to the API with 503
    `maintenance` and Retry-After, before the route runs; every API answer carries
    `X-Selfmart-Maintenance: on` so the console can show its banner."""

    RETRY_AFTER = "60"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        from selfmart.maintenance import service as maintenance

        state = scope["app"].state
        current = await state.maintenance.current(state.sessionmaker)
        if not current.on:
            await self.app(scope, receive, send)
            return
        if maintenance.refused(scope["method"], path):
            body = error_body(
                "maintenance", current.message or "The system is under maintenance; try again later"
            )
            headers = {"retry-after": self.RETRY_AFTER, "x-selfmart-maintenance": "on"}
            await JSONResponse(body, 503, headers=headers)(scope, receive, send)
            return

        async def flagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-selfmart-maintenance", b"on"),
                ]
            await send(message)

        await self.app(scope, receive, flagged)
