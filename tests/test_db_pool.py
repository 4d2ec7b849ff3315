"""The pool tests a connection before use only after it has sat idle (db._ping_idle_connections):
one that died while idle (a database restart, a firewall cutting quiet connections) is replaced
before a request sees it; one used moments ago is handed out without the extra round trips."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart import db


async def _pooled_pid_killed_while_idle(db_url: str, engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        pid = int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)
    # Back in the pool, idle: end it from another connection and wait until it is gone.
    killer = db.make_engine(db_url, pool_size=1, max_overflow=0)
    try:
        async with killer.connect() as k:
            await k.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(100):
                alive = await k.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                if not alive:
                    break
                await asyncio.sleep(0.02)
    finally:
        await killer.dispose()
    return pid


@pytest.mark.parametrize("idle", [True, False])
async def test_a_connection_that_died_while_idle_is_replaced_before_use(
    db_url: str, backend: str, monkeypatch: pytest.MonkeyPatch, idle: bool
) -> None:
    if backend != "postgresql":
        pytest.skip("needs a database server that can end a connection: PostgreSQL only")
    # idle: every connection back in the pool counts as idle (threshold 0 s);
    # not idle: none does, so none is pinged, and the dead one is handed out.
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0 if idle else 3600.0)
    engine = db.make_engine(db_url, pool_size=1, max_overflow=0)
    try:
        dead = await _pooled_pid_killed_while_idle(db_url, engine)
        async with engine.connect() as conn:
            if idle:
                pid = await conn.scalar(text("SELECT pg_backend_pid()"))
                assert pid != dead  # a new connection, and no error
            else:
                with pytest.raises(DBAPIError) as caught:
                    await conn.scalar(text("SELECT pg_backend_pid()"))
                assert caught.value.connection_invalidated
    finally:
        await engine.dispose()
