"""A change of maintenance mode made on one API process is seen by the others at once, through
Redis pub/sub (selfmart.kit.invalidation), not when their cached copy of the flag runs out.

Two app instances stand for two processes: the same database, the same Redis, each its own
cache of the flag, kept for an hour here so that only the announcement can refresh it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.app import create_app
from selfmart.kit import invalidation
from selfmart.maintenance import service as maintenance
from tests.builders import auth_headers, make_user
from tests.support import settings_for

HOUR = 3600.0
#: Longest wait for an announcement to arrive (a bound on waiting: it comes in milliseconds).
PATIENCE = 10.0


@asynccontextmanager
async def process(
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    **settings: Any,
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """An app (one API process) listening for announcements, and a client of it."""
    app = create_app(settings_for(db_url, **settings), engine=engine)
    app.state.sessionmaker = sessionmaker
    app.state.maintenance = maintenance.Cache(HOUR)
    bus: invalidation.Bus = app.state.invalidation
    bus.start()
    try:
        if settings.get("redis_url"):
            await asyncio.wait_for(bus.subscribed.wait(), PATIENCE)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield app, c
    finally:
        await bus.stop()


async def _write(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """A write maintenance mode refuses (503) and that otherwise fails validation (422)."""
    return (await client.post("/api/v1/products", json={}, headers=headers)).status_code


async def _until(client: httpx.AsyncClient, headers: dict[str, str], status: int) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    got = await _write(client, headers)
    while got != status and loop.time() < deadline:
        await asyncio.sleep(0.02)
        got = await _write(client, headers)
    return got


async def test_a_change_on_one_process_reaches_the_other_at_once(
    session: AsyncSession,
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    shared_redis: tuple[str, str],
) -> None:
    url, namespace = shared_redis
    headers = await auth_headers(session, await make_user(session))
    shared = {"redis_url": url, "jobs_queue": namespace}
    async with (
        process(db_url, engine, sessionmaker, **shared) as (_, a),
        process(db_url, engine, sessionmaker, **shared) as (_, b),
    ):
        assert await _write(b, headers) == 422  # B has read the flag: off, kept for an hour

        r = await a.put("/api/v1/system/maintenance", json={"on": True}, headers=headers)
        assert r.status_code == 200, r.text
        assert await _write(a, headers) == 503  # the process that changed it: at once
        assert await _until(b, headers, 503) == 503  # the other: told, not after the hour

        r = await b.put("/api/v1/system/maintenance", json={"on": False}, headers=headers)
        assert r.status_code == 200, r.text
        assert await _until(a, headers, 422) == 422


async def test_the_command_line_tells_every_process(
    session: AsyncSession,
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    shared_redis: tuple[str, str],
) -> None:
    """`selfmart maintenance on` holds no cache; it announces the change through Redis."""
    url, namespace = shared_redis
    headers = await auth_headers(session, await make_user(session))
    async with process(db_url, engine, sessionmaker, redis_url=url, jobs_queue=namespace) as (
        app,
        client,
    ):
        assert await _write(client, headers) == 422
        from selfmart.iam.actor import SYSTEM

        await maintenance.change(session, on=True, message="", actor=SYSTEM)
        await session.flush()
        await invalidation.publish(app.state.settings, maintenance.INVALIDATION)
        assert await _until(client, headers, 503) == 503


async def test_without_redis_the_process_that_changed_it_sees_it_at_once(
    session: AsyncSession,
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    headers = await auth_headers(session, await make_user(session))
    async with process(db_url, engine, sessionmaker) as (_, client):
        assert await _write(client, headers) == 422
        r = await client.put("/api/v1/system/maintenance", json={"on": True}, headers=headers)
        assert r.status_code == 200, r.text
        assert await _write(client, headers) == 503
