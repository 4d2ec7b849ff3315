"""A unique or foreign-key violation no service foresaw (two requests racing past the same
check) is a 409 naming the column, on both databases; the request's writes are rolled back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.deps import SessionDep
from selfmart.models import Store, Terminal

from .support import fingerprint


@pytest.fixture
def racing_app(app: Any) -> Any:
    """The app plus two routes that write what a race would: a duplicate store code, and a
    terminal of a store deleted meanwhile (no check first, as if another request won)."""

    async def duplicate_code(session: SessionDep) -> None:
        session.add(Store(code="RACE-1", name="first", city=""))
        await session.flush()
        session.add(Store(code="RACE-1", name="second", city=""))
        await session.flush()

    async def missing_store(session: SessionDep) -> None:
        session.add(Store(code="RACE-2", name="kept?", city=""))
        await session.flush()
        session.add(Terminal(code="T-RACE", store_id=2_000_000_000, name="orphan"))
        await session.flush()

    app.add_api_route("/api/v1/_race/duplicate", duplicate_code, methods=["POST"])
    app.add_api_route("/api/v1/_race/missing", missing_store, methods=["POST"])
    return app


async def test_a_unique_violation_is_409_naming_the_column(
    racing_app: Any, session: AsyncSession
) -> None:
    transport = httpx.ASGITransport(app=racing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        before = await fingerprint(session)
        r = await c.post("/api/v1/_race/duplicate")
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "already_exists"
    assert [d["field"] for d in body["details"]] == ["code"]
    assert await fingerprint(session) == before


async def test_a_foreign_key_violation_is_409_and_rolls_back(
    racing_app: Any, session: AsyncSession, backend: str
) -> None:
    transport = httpx.ASGITransport(app=racing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.post("/api/v1/_race/missing")
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "conflict"
    if backend == "postgresql":  # SQLite does not say which key failed
        assert [d["field"] for d in r.json()["details"]] == ["store_id"]
    assert not await session.scalar(select(func.count()).where(Store.code == "RACE-2"))
