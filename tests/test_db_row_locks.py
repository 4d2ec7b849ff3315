"""`SELECT ... FOR UPDATE` means the same on both backends (db._sqlite_row_locks): two requests
that read a row for update and then write from what they read never lose an update. On SQLite,
without the lock, both would read 0 outside any transaction and both write 1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart import db

probe_md = MetaData()
probe = Table(
    "test_row_lock_probe",
    probe_md,
    Column("id", Integer, primary_key=True),
    Column("value", Integer, nullable=False),
)


@pytest.fixture
async def probe_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.make_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(probe_md.drop_all)
        await conn.run_sync(probe_md.create_all)
        await conn.execute(probe.insert().values(id=1, value=0))
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(probe_md.drop_all)
        await engine.dispose()


async def _increment(engine: AsyncEngine, read_then: asyncio.Event, go: asyncio.Event) -> int:
    async with db.make_sessionmaker(engine)() as session:
        seen = await session.scalar(select(probe.c.value).where(probe.c.id == 1).with_for_update())
        assert seen is not None
        read_then.set()
        await go.wait()  # both readers are past their read (or waiting on the lock)
        await session.execute(update(probe).where(probe.c.id == 1).values(value=seen + 1))
        await session.commit()
        return int(seen)


async def test_two_locking_reads_then_writes_never_lose_an_update(
    probe_engine: AsyncEngine,
) -> None:
    first_read, second_read, go = asyncio.Event(), asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(_increment(probe_engine, first_read, go))
    await first_read.wait()
    second = asyncio.create_task(_increment(probe_engine, second_read, go))
    try:
        # The second reader waits on the first's lock: it has not read yet.
        await asyncio.sleep(0.3)
        assert not second_read.is_set()
    finally:
        go.set()
    seen = sorted(await asyncio.gather(first, second))
    assert seen == [0, 1]  # the second read what the first committed
    async with probe_engine.connect() as conn:
        assert await conn.scalar(select(probe.c.value).where(probe.c.id == 1)) == 2


async def test_a_plain_read_takes_no_lock(probe_engine: AsyncEngine) -> None:
    factory = db.make_sessionmaker(probe_engine)
    async with factory() as reader, factory() as writer:
        assert await reader.scalar(select(probe.c.value).where(probe.c.id == 1)) == 0
        # A writer is not held up by a reader that did not ask for a lock.
        await asyncio.wait_for(
            writer.execute(update(probe).where(probe.c.id == 1).values(value=5)), timeout=2
        )
        await writer.commit()
        await reader.rollback()
