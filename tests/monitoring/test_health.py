"""/healthz answers while the process lives; /readyz answers 200 only when the database, Redis
(when configured) and the job runtime all answer, and otherwise 503 naming what failed."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.app import create_app
from selfmart.db import make_engine

from ..support import settings_for


async def test_healthz_answers_without_touching_anything(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


async def test_readyz_ready_when_database_and_jobs_answer(
    client: httpx.AsyncClient, jobs: Any
) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "jobs"}  # no Redis configured


async def test_readyz_names_the_job_runtime_when_it_is_not_running(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failing"] == ["jobs"]
    assert r.json()["checks"]["database"]["ok"] is True


async def test_readyz_503_naming_the_database_when_it_is_unreachable(
    db_url: str, sessionmaker: async_sessionmaker[AsyncSession], jobs: Any
) -> None:
    # a PostgreSQL that nobody listens on (port 1 on loopback refuses at once)
    bad = "postgresql+asyncpg://selfmart@127.0.0.1:1/nothing"
    engine: AsyncEngine = make_engine(bad)
    app = create_app(settings_for(bad), engine=engine)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/readyz")
            alive = await c.get("/healthz")
    finally:
        await engine.dispose()
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["database"]
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["detail"]  # the driver's reason, in words
    assert body["checks"]["jobs"]["ok"] is True
    assert alive.status_code == 200  # alive, not ready


async def test_readyz_names_redis_when_configured_and_down(
    db_url: str, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], jobs: Any
) -> None:
    app = create_app(settings_for(db_url, redis_url="redis://127.0.0.1:1/0"), engine=engine)
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failing"] == ["redis"]
