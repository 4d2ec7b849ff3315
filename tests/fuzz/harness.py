"""The fuzz harness: cases generated from our own OpenAPI document, sent in-process, judged.

Schemathesis turns each operation of the document into Hypothesis strategies (valid data, and
data that breaks the schema); the cases are drawn up front, derandomized, so a run is
reproducible, then sent through the test's `client` (httpx over ASGI, so the audit guard stays
on and the app shares the test's rolled-back transaction, on SQLite and on PostgreSQL alike).

What every response must satisfy is in `judge()`; the database fingerprint that proves a refused
request changed nothing is `tests.support.fingerprint()`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation

from selfmart.app import create_app

from ..support import settings_for

#: Examples drawn per operation and generation mode; `SELFMART_FUZZ_EXAMPLES=200` for a deep
#: local run. The default keeps both databases' runs together near a minute on 2 cores.
EXAMPLES = int(os.environ.get("SELFMART_FUZZ_EXAMPLES", "5"))
#: Without credentials a protected route can only say 401: a couple of cases prove its shape.
UNAUTH_EXAMPLES = max(2, EXAMPLES // 3)

ERROR_KEYS = {"error", "message", "details", "request_id"}

#: Refusals that write on purpose, so that the refusal itself is remembered: a failed login is
#: logged and counts towards the lockout, a reused refresh token revokes its session, a wrong
#: activation code counts towards locking the code. Any other 4xx must leave every table as it
#: was. (operation label → tables a 4xx may change)
REFUSALS_THAT_WRITE: dict[str, set[str]] = {
    "POST /api/v1/auth/login": {"login_logs", "users", "login_throttles"},
    "POST /api/v1/auth/refresh": {"login_logs", "auth_sessions"},
    "POST /api/terminal/v1/activate": {"terminals"},
    # every platform callback is recorded, believed or not
    "POST /api/payments/notify/{channel}/{account_id}": {"payment_callbacks"},
}

#: Routes a payment platform calls: they answer in the platform's own format (WeChat's
#: {"code", "message"}, Alipay's text), which the platform's retry logic reads, not ours.
PLATFORM_ANSWERS = {"POST /api/payments/notify/{channel}/{account_id}"}

#: A 5xx some routes answer by design, saying so in their contract (a load balancer's probe
#: reads readiness from the status): operation label → statuses.
DECLARED_UNAVAILABLE: dict[str, set[int]] = {"GET /readyz": {503}}


@cache
def openapi_document() -> dict[str, Any]:
    doc: dict[str, Any] = create_app(settings_for("sqlite+aiosqlite:///:memory:")).openapi()
    return doc


@cache
def _schema() -> Any:
    return schemathesis.openapi.from_dict(openapi_document())


@cache
def operations() -> dict[str, APIOperation[Any, Any, Any, Any]]:
    """Every operation of the document by its label, e.g. 'GET /api/v1/users/{user_id}'."""
    return {op.label: op for op in (r.ok() for r in _schema().get_all_operations())}


#: Stands in for the real token while generating, so that no case "breaks the schema" only by
#: its credentials (the real ones replace it when the case is sent).
PLACEHOLDER_AUTH = {"Authorization": "Bearer placeholder"}


@cache
def cases(
    label: str, mode: GenerationMode, n: int, *, with_auth: bool = True
) -> tuple[Case[Any], ...]:
    """`n` (at most) cases for one operation, the same ones on every run and every database.
    `with_auth=False` leaves the Authorization header to the generator (junk, or none)."""
    drawn: list[Case[Any]] = []
    fixed = PLACEHOLDER_AUTH if with_auth else None

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operations()[label].as_strategy(generation_mode=mode, headers=fixed))
    def collect(case: Case[Any]) -> None:
        drawn.append(case)

    try:
        collect()
    except Unsatisfiable:
        pass  # nothing to break: an operation without parameters has no negative cases
    return tuple(drawn)


def path_params(label: str) -> list[str]:
    op = operations()[label]
    return [p.name for p in op.path_parameters]


def is_public(label: str, doc: dict[str, Any] | None = None) -> bool:
    """An operation that declares no 401 needs no credentials (login, health, activation)."""
    method, path = label.split(" ", 1)
    responses = (doc or openapi_document())["paths"][path][method.lower()]["responses"]
    return "401" not in responses or label in REFUSALS_THAT_WRITE


def is_stream(label: str) -> bool:
    """An operation whose success is an endless stream (server-sent events)."""
    method, path = label.split(" ", 1)
    ok = openapi_document()["paths"][path][method.lower()]["responses"].get("200", {})
    return "text/event-stream" in ok.get("content", {})


#: How long a stream may stay open before the fuzz takes it as opened (a success it cannot
#: read to the end) and moves on.
STREAM_SECONDS = 0.5


def _query_value(value: Any) -> Any:
    """httpx takes scalars or lists of scalars; anything else is sent as its JSON text."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value):
        return value
    return json.dumps(value)


def _items(files: Any) -> list[tuple[str, Any]]:
    return list(files.items()) if isinstance(files, dict) else list(files)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else json.dumps(value)).encode()


def _file_part(value: Any) -> Any:
    """A multipart part as httpx takes it; negative cases put numbers or objects where a file
    goes, which are sent as their text (what a browser would send)."""
    if isinstance(value, tuple):
        filename, content, *rest = value
        return (filename, _as_bytes(content), *rest)
    return _as_bytes(value)


def build_request(
    client: httpx.AsyncClient,
    case: Case[Any],
    *,
    auth: dict[str, str] | None,
    path_override: dict[str, Any] | None = None,
) -> httpx.Request:
    """The httpx request for `case`. With `auth` its credentials replace the generated ones;
    without, the generated Authorization header (junk or none) is sent as it is."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    url: str = kwargs["url"]
    if path_override:
        saved = dict(case.path_parameters or {})
        case.path_parameters.update(path_override)
        url = "http://testserver" + case.formatted_path
        case.path_parameters.clear()
        case.path_parameters.update(saved)
    headers = {
        k: v
        for k, v in (kwargs.get("headers") or {}).items()
        if k.lower() not in {"user-agent", "x-schemathesis-testcaseid", "connection"}
    }
    if auth is not None:
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        headers.update(auth)
    params = {k: _query_value(v) for k, v in (kwargs.get("params") or {}).items()}
    extra: dict[str, Any] = {}
    if "json" in kwargs:
        extra["content"] = json.dumps(kwargs["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    if "data" in kwargs:
        data = kwargs["data"]
        if isinstance(data, bytes | str):
            extra["content"] = data
        else:
            extra["data"] = data
    if "files" in kwargs:
        extra["files"] = [(name, _file_part(value)) for name, value in _items(kwargs["files"])]
    request = client.build_request(case.method, url, headers=headers, params=params, **extra)
    request.read()  # multipart bodies stream; read them now so a report can show them
    return request


@dataclass
class Verdict:
    label: str
    problems: list[str] = field(default_factory=list)

    def fail(self, request: httpx.Request, status: int | str, what: str, body: str = "") -> None:
        self.problems.append(
            f"{request.method} {request.url} → {status}: {what}"
            + (f"\n      body sent: {request.content[:300]!r}" if request.content else "")
            + (f"\n      answer: {body[:400]}" if body else "")
        )


def judge(
    verdict: Verdict,
    case: Case[Any],
    request: httpx.Request,
    response: httpx.Response,
    declared: set[str],
) -> None:
    """The rules every response obeys (the database rule is checked by the caller)."""
    status = response.status_code
    text = response.text
    label = verdict.label
    if status >= 500 and status not in DECLARED_UNAVAILABLE.get(label, set()):
        verdict.fail(request, status, "server error", text)
        return
    if str(status) not in declared and "default" not in declared:
        verdict.fail(request, status, f"status not declared in OpenAPI ({sorted(declared)})", text)
    if status < 400 or label in PLATFORM_ANSWERS or label in DECLARED_UNAVAILABLE:
        return
    try:
        body = response.json()
    except ValueError:
        verdict.fail(request, status, "error body is not JSON", text)
        return
    if not isinstance(body, dict) or set(body) != ERROR_KEYS:
        verdict.fail(request, status, f"error body is not {sorted(ERROR_KEYS)}", text)
        return
    if not isinstance(body["error"], str) or not isinstance(body["details"], list):
        verdict.fail(request, status, "error/details of the wrong type", text)
    if body["request_id"] != response.headers.get("x-request-id"):
        verdict.fail(request, status, "request_id differs from X-Request-ID", text)
    if status == 422 and not any(
        isinstance(d, dict) and d.get("field") for d in body.get("details") or []
    ):
        verdict.fail(request, status, "422 that names no field", text)


def _negated_only_in_body(case: Case[Any]) -> bool:
    from schemathesis.core.parameters import ParameterLocation

    meta = case.meta
    if meta is None:
        return False
    negated = {loc for loc, info in meta.components.items() if info.mode == GenerationMode.NEGATIVE}
    return negated == {ParameterLocation.BODY}


def schemathesis_checks(
    verdict: Verdict, case: Case[Any], request: httpx.Request, response: httpx.Response
) -> None:
    """Schemathesis' own judgement: the response matches its declared schema and media type,
    and data that breaks the schema is refused."""
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
    )

    checks = [response_schema_conformance, content_type_conformance]
    if _negated_only_in_body(case):
        # A query string, path or header is text: a number where a string is declared, or
        # one item where a list is, cannot be told apart from valid input once sent (and
        # pydantic reads "0.0" as a time on purpose). Only a body keeps JSON's types.
        checks.append(negative_data_rejection)
    try:
        case.validate_response(response, checks=checks)
    except FailureGroup as group:
        for failure in group.exceptions:
            what = f"schemathesis: {failure.title}: {failure.message}"
            verdict.fail(request, response.status_code, what[:500], response.text)
