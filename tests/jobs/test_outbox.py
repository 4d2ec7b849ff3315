"""The outbox: written in the caller's transaction, dispatched after commit, swept, claimed
once across workers, retried with backoff, marked failed after the last attempt."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.audit import service as audit
from selfmart.db import make_sessionmaker
from selfmart.deps import SessionDep
from selfmart.errors import Conflict
from selfmart.iam.actor import SYSTEM
from selfmart.jobs import outbox, runtime
from selfmart.kit import aftercommit
from selfmart.kit.time import utcnow
from selfmart.models import OutboxEvent
from tests.support import settings_for

from .handlers import FAIL, TOPIC, calls


@pytest.fixture
def enqueue_route(app: Any) -> str:
    """A route that enqueues an event and then succeeds or fails (rolling back)."""
    router = APIRouter()

    @router.post("/api/v1/test-outbox")
    async def enqueue_then(session: SessionDep, key: str, fail: bool = False) -> dict[str, int]:
        event = await outbox.enqueue(session, TOPIC, {"key": key})
        await audit.record(session, SYSTEM, "test.enqueue", "test", key)
        if fail:
            raise Conflict("refused after enqueueing")
        return {"event_id": event.id}

    app.include_router(router)
    return "/api/v1/test-outbox"


async def _events(session: AsyncSession, key: str) -> list[OutboxEvent]:
    rows = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == TOPIC))).all()
    return [e for e in rows if e.payload.get("key") == key]


async def test_committed_request_dispatches_at_once(
    client: httpx.AsyncClient, session: AsyncSession, enqueue_route: str, jobs: Any
) -> None:
    key = uuid.uuid4().hex
    await session.connection()  # the request then runs inside the test's transaction
    r = await client.post(enqueue_route, params={"key": key})
    assert r.status_code == 200
    assert calls(key) == [{"key": key}]  # the after-commit kick ran it, no sweep needed
    (event,) = await _events(session, key)
    assert (event.status, event.attempts, event.last_error) == ("done", 1, None)
    assert event.done_at is not None


async def test_rolled_back_request_sends_nothing(
    client: httpx.AsyncClient, session: AsyncSession, enqueue_route: str, jobs: Any
) -> None:
    key = uuid.uuid4().hex
    await session.connection()
    r = await client.post(enqueue_route, params={"key": key, "fail": "true"})
    assert r.status_code == 409
    assert await _events(session, key) == []
    await outbox.sweep(now=utcnow() + timedelta(days=1))
    assert calls(key) == []


async def test_sweep_dispatches_what_no_kick_took(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], app: Any
) -> None:
    """A process that died between commit and kick: the event waits in the table."""
    key = uuid.uuid4().hex
    event = await outbox.enqueue(session, TOPIC, {"key": key})
    aftercommit.discard(session)  # the kick is lost
    assert calls(key) == []
    async with runtime.running(app.state.settings, sessionmaker):
        assert await outbox.sweep() >= 1
    assert calls(key) == [{"key": key}]
    await session.refresh(event)
    assert event.status == "done"


async def test_kick_without_a_runtime_does_nothing(session: AsyncSession) -> None:
    assert not runtime.is_running()
    assert await runtime.kick(outbox.DISPATCH_JOB, [1]) is False


async def test_unknown_topic_is_refused_at_enqueue(session: AsyncSession) -> None:
    with pytest.raises(LookupError, match="no outbox handler"):
        await outbox.enqueue(session, "no.such.topic", {})


async def test_delayed_event_waits_for_its_time(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    key = uuid.uuid4().hex
    event = await outbox.enqueue(session, TOPIC, {"key": key}, delay=timedelta(minutes=5))
    assert not [c for c in aftercommit.pending(session) if isinstance(c, outbox._Kick)]
    async with runtime.running(settings_for(db_url), sessionmaker):
        assert (await outbox.dispatch([event.id])).claimed == 0
        report = await outbox.dispatch([event.id], now=utcnow() + timedelta(minutes=6))
    assert report.done == [event.id]
    assert calls(key) == [{"key": key}]


async def test_failures_back_off_then_give_up(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    key = uuid.uuid4().hex
    FAIL[key] = 99
    settings = settings_for(db_url, outbox_max_attempts=3, outbox_retry_base_seconds=10)
    event = await outbox.enqueue(session, TOPIC, {"key": key})
    t0 = utcnow()
    async with runtime.running(settings, sessionmaker):
        assert (await outbox.dispatch([event.id], now=t0)).retrying == [event.id]
        await session.refresh(event)
        assert (event.status, event.attempts) == ("pending", 1)
        assert event.available_at == t0 + timedelta(seconds=10)
        assert event.last_error == f"RuntimeError: boom for {key}"

        assert (await outbox.dispatch([event.id], now=t0 + timedelta(seconds=9))).claimed == 0
        t1 = t0 + timedelta(seconds=10)
        assert (await outbox.dispatch([event.id], now=t1)).retrying == [event.id]
        await session.refresh(event)
        assert event.available_at == t1 + timedelta(seconds=20)  # doubled

        t2 = t1 + timedelta(seconds=20)
        assert (await outbox.dispatch([event.id], now=t2)).failed == [event.id]
        await session.refresh(event)
        assert (event.status, event.attempts, event.done_at) == ("failed", 3, None)
        assert await outbox.sweep(now=t2 + timedelta(days=30)) == 0
    assert len(calls(key)) == 3


async def test_a_retry_that_succeeds_is_done(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    key = uuid.uuid4().hex
    FAIL[key] = 1
    event = await outbox.enqueue(session, TOPIC, {"key": key})
    async with runtime.running(settings_for(db_url), sessionmaker):
        await outbox.dispatch([event.id])
        await outbox.sweep(now=utcnow() + timedelta(hours=1))
    await session.refresh(event)
    assert (event.status, event.attempts, event.last_error) == ("done", 2, None)


async def test_a_claimed_event_is_invisible_until_its_lease_ends(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    """A worker that claims and dies: nobody else takes the event until the lease runs out."""
    key = uuid.uuid4().hex
    event = await outbox.enqueue(session, TOPIC, {"key": key})
    now = utcnow()
    lease = now + timedelta(seconds=300)
    claimed = await outbox._claim(session, ids=[event.id], now=now, lease_until=lease, limit=10)
    assert claimed == [event.id]
    assert await outbox._claim(session, ids=[event.id], now=now, lease_until=lease, limit=10) == []
    async with runtime.running(settings_for(db_url), sessionmaker):
        assert (await outbox.dispatch([event.id], now=now + timedelta(seconds=299))).claimed == 0
        report = await outbox.dispatch([event.id], now=now + timedelta(seconds=300))
    assert report.done == [event.id]
    await session.refresh(event)
    assert event.attempts == 2  # the dead worker's attempt counts


async def test_one_kick_per_transaction_carries_every_event(session: AsyncSession) -> None:
    a = await outbox.enqueue(session, TOPIC, {"key": "a"})
    b = await outbox.enqueue(session, TOPIC, {"key": "b"})
    kicks = [c for c in aftercommit.pending(session) if isinstance(c, outbox._Kick)]
    assert len(kicks) == 1
    assert kicks[0].ids == [a.id, b.id]
    aftercommit.discard(session)


async def test_concurrent_dispatchers_run_each_event_once(engine: AsyncEngine, db_url: str) -> None:
    """Several workers sweeping at once over committed events, on real separate connections."""
    key = uuid.uuid4().hex
    factory = make_sessionmaker(engine)
    async with factory() as s:
        ids = [(await outbox.enqueue(s, TOPIC, {"key": key, "n": i})).id for i in range(60)]
        aftercommit.discard(s)
        await s.commit()
    try:
        async with runtime.running(settings_for(db_url), factory):
            for _ in range(10):
                reports = await asyncio.gather(*(outbox.dispatch(limit=7) for _ in range(6)))
                if not any(r.claimed for r in reports):
                    break
        seen = Counter(c["n"] for c in calls(key))
        assert sorted(seen) == list(range(60))
        assert set(seen.values()) == {1}, "an event ran more than once"
        async with factory() as s:
            done = await s.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.id.in_(ids), OutboxEvent.status == "done")
            )
        assert done == 60
    finally:
        async with factory() as s:
            await s.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
            await s.commit()


async def test_a_jobs_transaction_kicks_after_commit_and_not_after_rollback(
    session: AsyncSession, jobs: Any
) -> None:
    await session.connection()  # the job's transaction nests in the test's
    kept, dropped = uuid.uuid4().hex, uuid.uuid4().hex
    async with runtime.transaction() as s:
        await outbox.enqueue(s, TOPIC, {"key": kept})
    assert calls(kept) == [{"key": kept}]

    async def fails_after_enqueueing() -> None:
        async with runtime.transaction() as s:
            await outbox.enqueue(s, TOPIC, {"key": dropped})
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await fails_after_enqueueing()
    await outbox.sweep(now=utcnow() + timedelta(days=1))
    assert calls(dropped) == []
    assert await _events(session, dropped) == []
