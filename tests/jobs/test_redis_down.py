"""Redis going away and coming back under a scale-out API process (Redis reached through a
gate the test shuts and opens). While it is away the API still takes requests that queue work
(the work waits in the outbox, nothing is lost), says so on /readyz, stays alive on /healthz;
once it is back new work travels over Redis again, and the sweep the scheduler fires carries
out what waited, once."""

from __future__ import annotations

import uuid

import httpx
from fastapi import APIRouter
from redis.asyncio import Redis
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.app import create_app
from selfmart.db import make_sessionmaker
from selfmart.deps import SessionDep
from selfmart.jobs import outbox, runtime
from selfmart.models import OutboxEvent
from tests.faults import Gate
from tests.support import settings_for

from .handlers import TOPIC, calls
from .test_redis import redis_url  # noqa: F401  (the fixture: real Redis, skipped without)

ROUTE = "/api/v1/test-outbox-redis"


async def _event(engine: AsyncEngine, event_id: int) -> OutboxEvent:
    async with make_sessionmaker(engine)() as s:
        event = await s.get(OutboxEvent, event_id)
        assert event is not None
        return event


async def test_redis_down_work_waits_and_nothing_is_lost(
    redis_url: str,  # noqa: F811
    db_url: str,
    engine: AsyncEngine,
) -> None:
    queue = f"selfmart-test-down-{uuid.uuid4().hex[:10]}"
    async with Gate.before(redis_url) as gate:
        settings = settings_for(db_url, redis_url=gate.url(redis_url), jobs_queue=queue)
        app = create_app(settings, engine=engine)
        router = APIRouter()

        @router.post(ROUTE)
        async def enqueue(session: SessionDep, key: str) -> dict[str, int]:
            event = await outbox.enqueue(session, TOPIC, {"key": key})
            return {"event_id": event.id}

        app.include_router(router)
        await runtime.start(settings, make_sessionmaker(engine))  # the API side: enqueue only
        keys = [f"down-{uuid.uuid4().hex[:8]}", f"back-{uuid.uuid4().hex[:8]}"]
        ids: list[int] = []
        direct = Redis.from_url(redis_url)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                await gate.shut()
                r = await c.post(ROUTE, params={"key": keys[0]})
                assert r.status_code == 200, r.text  # the API answers; the kick failed quietly
                ids.append(r.json()["event_id"])
                assert (await c.get("/healthz")).status_code == 200
                ready = await c.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["failing"] == ["redis"]
                waiting = await _event(engine, ids[0])
                assert (waiting.status, waiting.attempts) == ("pending", 0)
                assert calls(keys[0]) == []
                assert await direct.xlen(queue) == 0  # nothing reached Redis

                await gate.open()
                assert (await c.get("/readyz")).status_code == 200
                r = await c.post(ROUTE, params={"key": keys[1]})
                assert r.status_code == 200, r.text
                ids.append(r.json()["event_id"])
                assert await direct.xlen(queue) == 1  # the new kick travels over Redis again

            # the scheduler's sweep (a worker runs it) carries out what waited, and the new one
            assert await outbox.sweep() >= 2
            for key, event_id in zip(keys, ids, strict=True):
                assert calls(key) == [{"key": key}]
                done = await _event(engine, event_id)
                assert (done.status, done.attempts) == ("done", 1)
        finally:
            await runtime.stop()
            await direct.delete(queue)
            await direct.aclose()  # type: ignore[attr-defined]  # redis 5+; stubs are older
            async with make_sessionmaker(engine)() as s:
                await s.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
                await s.commit()
