"""Hostile input the schema fuzzer cannot generate well: bodies that are not JSON at all, huge
or deeply nested bodies, wrong media types, null bytes, giant numbers, look-alike usernames,
SQL and HTML that must come back verbatim. Each answer is a 4xx in our error shape that
changes nothing, or a success that stores exactly what was sent; never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from .builders import auth_headers, make_user
from .support import fingerprint

ERROR_KEYS = {"error", "message", "details", "request_id"}
STORES = "/api/v1/stores"
LOGIN = "/api/v1/auth/login"


async def _admin(session: AsyncSession) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="super_admin"))


def assert_refused(response: httpx.Response, status: int, field: str | None = None) -> Any:
    """`response` is a refusal with `status` in our error shape, naming `field` if given."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["request_id"] == response.headers["x-request-id"]
    if field is not None:
        assert field in [d["field"] for d in body["details"]], body
    return body


# --- bodies that are not what the route reads ---------------------------------------------

UNREADABLE_BODIES = {
    "not JSON": b"this is not json",
    "truncated JSON": b'{"code": "S1", "name": ',
    "bytes that are not UTF-8": b"\x94w\xf7/\xa5\x1e",
    "a lone UTF-16 BOM": b"\xff\xfe",
    "deeply nested arrays (1e5)": b"[" * 100_000 + b"]" * 100_000,
    "deeply nested objects (1e5)": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
}


@pytest.mark.parametrize("what", sorted(UNREADABLE_BODIES))
@pytest.mark.parametrize("path", [STORES, LOGIN])
async def test_unreadable_json_body_is_422_naming_the_body(
    what: str, path: str, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = {**await _admin(session), "content-type": "application/json"}
    before = await fingerprint(session)
    r = await client.post(path, content=UNREADABLE_BODIES[what], headers=headers)
    body = assert_refused(r, 422)
    assert any(d["field"].startswith("body") for d in body["details"]), body
    assert await fingerprint(session) == before


@pytest.mark.parametrize("payload", [[], [{"code": "S1", "name": "x"}], "a string", 42, None, True])
async def test_json_that_is_not_an_object_is_422(
    payload: Any, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _admin(session)
    before = await fingerprint(session)
    r = await client.post(STORES, json=payload, headers=headers)
    assert_refused(r, 422, "body")
    assert await fingerprint(session) == before
