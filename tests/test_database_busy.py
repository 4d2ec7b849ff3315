"""SQLite has one writer lock. A request that cannot take it within the busy timeout (another
connection holds it: a long write, a machine too loaded to let it go in time) is a 503
`database_busy` with Retry-After that the client may simply send again, not a 500; nothing of
the request is written, and once the lock is free the same request succeeds."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url

from selfmart import db
from selfmart.app import create_app
from selfmart.db import make_engine
from selfmart.deps import SessionDep
from selfmart.kit.time import utcnow
from selfmart.models import Tag

from .support import settings_for


async def test_a_writer_that_cannot_take_the_lock_in_time_is_a_503_and_writes_nothing(
    db_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's one writer lock and busy timeout; PostgreSQL locks rows and waits")
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    engine = make_engine(db_url)  # new connections: the short timeout
    name = f"busy-{uuid.uuid4().hex[:8]}"
    app = create_app(settings_for(db_url), engine=engine)

    async def write(session: SessionDep) -> dict[str, str]:
        session.add(Tag(name=name, created_at=utcnow()))
        await session.flush()
        return {"name": name}

    async def count(session: SessionDep) -> dict[str, int]:
        n = await session.scalar(select(func.count()).where(Tag.name == name))
        return {"n": int(n or 0)}

    app.add_api_route("/api/v1/_busy/write", write, methods=["POST"])
    app.add_api_route("/api/v1/_busy/count", count, methods=["POST"])
    path = make_url(db_url).database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            holder.execute("BEGIN IMMEDIATE")  # another connection holds the writer lock
            r = await client.post("/api/v1/_busy/write")
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "database_busy"
            assert r.headers["Retry-After"] == "1"
            holder.execute("ROLLBACK")
            r = await client.post("/api/v1/_busy/count")
            assert r.json() == {"n": 0}  # nothing of the refused request was written
            r = await client.post("/api/v1/_busy/write")
            assert r.status_code == 200, r.text
            r = await client.post("/api/v1/_busy/count")
            assert r.json() == {"n": 1}
    finally:
        holder.close()
        async with engine.begin() as conn:
            await conn.execute(delete(Tag).where(Tag.name == name))
        await engine.dispose()


def test_the_busy_timeout_is_what_new_connections_get(tmp_path: Any) -> None:
    con = sqlite3.connect(tmp_path / "x.db")
    try:
        db._sqlite_pragmas(con, None)
        (ms,) = con.execute("PRAGMA busy_timeout").fetchone()
        assert ms == db.SQLITE_BUSY_TIMEOUT_MS == 15_000
    finally:
        con.close()
