"""The safety net under kit.ids: a number a route left unbounded that reaches the database
beyond what its column holds is a 422 naming the parameter, not a 500. (Routes should bound
their numbers, see tests/test_input_bounds.py; this keeps a missed one from failing a request
with a 500 in production.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from selfmart.deps import SessionDep
from selfmart.models import AuditLog, Store


@pytest.fixture
async def unbounded(app: Any) -> Any:
    async def by_path(store_id: int, session: SessionDep) -> dict[str, bool]:
        return {"found": await session.get(Store, store_id) is not None}

    async def by_query(session: SessionDep, entry: int = 1, other: int = 1) -> dict[str, int]:
        rows = await session.scalars(select(AuditLog.id).where(AuditLog.id == entry))
        return {"n": len(rows.all())}

    async def by_body(body: dict[str, int], session: SessionDep) -> dict[str, bool]:
        return {"found": await session.get(Store, body["id"]) is not None}

    app.add_api_route("/api/v1/_unbounded/stores/{store_id}", by_path, methods=["GET"])
    app.add_api_route("/api/v1/_unbounded/audit", by_query, methods=["GET"])
    app.add_api_route("/api/v1/_unbounded/body", by_body, methods=["POST"])
    # ahead of the console's catch-all GET route
    app.router.routes[:0] = [app.router.routes.pop() for _ in range(3)]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "validation_error"
    assert [(d["field"], d["reason"]) for d in body["details"]] == [(field, "out_of_range")]


@pytest.mark.parametrize("value", [2**64, -(2**64), 10**30])
async def test_past_64_bits_anywhere_is_422(value: int, unbounded: httpx.AsyncClient) -> None:
    _refused(await unbounded.get(f"/api/v1/_unbounded/stores/{value}"), "path.store_id")
    r = await unbounded.get("/api/v1/_unbounded/audit", params={"other": 5, "entry": value})
    _refused(r, "query.entry")
    _refused(await unbounded.post("/api/v1/_unbounded/body", json={"id": value}), "body")


async def test_past_32_bits_for_an_integer_column(
    unbounded: httpx.AsyncClient, backend: str
) -> None:
    """stores.id is INTEGER: PostgreSQL cannot compare it with 2**31 (SQLite can: not found)."""
    r = await unbounded.get(f"/api/v1/_unbounded/stores/{2**31}")
    if backend == "postgresql":
        _refused(r, "path.store_id")
    else:
        assert r.json() == {"found": False}
    # a BIGINT column takes it
    r = await unbounded.get("/api/v1/_unbounded/audit", params={"entry": 2**31})
    assert r.json() == {"n": 0}
