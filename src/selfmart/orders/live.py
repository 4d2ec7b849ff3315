"""Live order updates for the console: server-sent events fed by the order timeline.

The timeline (order_events) is the feed: its ids only grow, so a client resumes from the
last id it saw (`Last-Event-ID`). Commits in this process wake the streams at once; commits in
other processes (several API workers) are seen by the periodic poll.

Ids are drawn when a row is inserted, not when its transaction commits: with orders arriving
concurrently, id 101 can be visible while 100's transaction is still running. A stream that
moved past 100 would never send it. So a stream remembers the ids it skipped over and looks
for them again on every poll for `GAP_SECONDS` (a rolled-back transaction leaves a gap for
good); an entry found late is sent then, its SSE id staying the highest sent so far. A stream
that starts (or resumes) also looks for the ids missing just below its starting point.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Collection
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.models import Order, OrderEvent

POLL_SECONDS = 2.0
#: A stream reads at most this often however fast commits wake it (a rush of orders would
#: otherwise make every open console query on every commit).
MIN_POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
BATCH = 200
#: How long a skipped id is looked for again (a write transaction outliving this is not
#: expected: requests are short and lock waits are bounded).
GAP_SECONDS = 30.0
#: At most this many skipped ids are remembered (a huge jump is rolled-back work, not gaps).
MAX_GAPS = 1000
#: On (re)connecting, ids this far below the starting point that are not yet committed are
#: looked for too: their transactions may still be running.
START_LOOKBACK = 200


class Hub:
    """Wakes every waiting stream; carries no data (the database does)."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    def wake(self) -> None:
        for event in list(self._waiters):
            event.set()

    async def wait(self, seconds: float) -> None:
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(event)


hub = Hub()


async def latest_event_id(session: AsyncSession) -> int:
    from sqlalchemy import func

    return int(await session.scalar(select(func.coalesce(func.max(OrderEvent.id), 0))) or 0)


async def visible_ids(session: AsyncSession, after_id: int, gaps: Collection[int]) -> list[int]:
    """The committed timeline ids after `after_id`, of every store, plus any of the skipped
    `gaps` now committed; at most BATCH, in id order. (Of every store: a gap is an id no one
    has committed yet, not another store's entry.)"""
    newer = OrderEvent.id > after_id
    where = or_(newer, OrderEvent.id.in_(sorted(gaps))) if gaps else newer
    stmt = select(OrderEvent.id).where(where).order_by(OrderEvent.id).limit(BATCH)
    return [int(i) for i in (await session.scalars(stmt)).all()]


async def fetch(
    session: AsyncSession, ids: Collection[int], store_ids: frozenset[int] | None
) -> list[dict[str, Any]]:
    """The timeline entries `ids` of the actor's stores, joined with the order's list fields,
    in id order."""
    stmt = (
        select(
            OrderEvent.id,
            OrderEvent.kind,
            OrderEvent.from_status,
            OrderEvent.to_status,
            OrderEvent.reason,
            OrderEvent.occurred_at,
            Order.id.label("order_id"),
            Order.order_no,
            Order.store_id,
            Order.terminal_id,
            Order.status,
            Order.total_fen,
            Order.item_count,
            Order.open_issues,
            Order.created_at,
        )
        .join(Order, Order.id == OrderEvent.order_id)
        .where(OrderEvent.id.in_(sorted(ids)))
        .order_by(OrderEvent.id)
    )
    if store_ids is not None:
        stmt = stmt.where(OrderEvent.store_id.in_(store_ids))
    rows = (await session.execute(stmt)).mappings().all()
    out = []
    for r in rows:
        item = dict(r)
        item["occurred_at"] = r["occurred_at"].isoformat()
        item["created_at"] = r["created_at"].isoformat()
        out.append(item)
    return out


def sse(event: str, data: dict[str, Any] | None, event_id: int | None = None) -> bytes:
    parts = []
    if event_id is not None:
        parts.append(f"id: {event_id}")
    parts.append(f"event: {event}")
    parts.append("data: " + json.dumps(data or {}, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(parts) + "\n\n").encode()


async def stream(
    factory: async_sessionmaker[AsyncSession],
    *,
    store_ids: frozenset[int] | None,
    after_id: int | None,
    is_disconnected: Callable[[], Any],
    max_seconds: float | None = None,
) -> AsyncGenerator[bytes]:
    """The event stream of one console: `order` events, then a `ping` when idle."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with factory() as session:
        if after_id is None:
            after_id = await latest_event_id(session)
        low = max(0, after_id - START_LOOKBACK)
        between = select(OrderEvent.id).where(OrderEvent.id > low, OrderEvent.id <= after_id)
        present = {int(i) for i in (await session.scalars(between)).all()}
    # skipped id -> until when it is looked for; at the start, the missing ids just below
    deadline = loop.time() + GAP_SECONDS
    gaps = {i: deadline for i in range(low + 1, after_id + 1) if i not in present}
    yield b"retry: 3000\n\n"
    yield sse("ready", {"last_event_id": after_id}, after_id)
    idle = 0.0
    last_sent = after_id
    while True:
        if await is_disconnected():
            return
        now = loop.time()
        for gap in [g for g, until in gaps.items() if until <= now]:
            del gaps[gap]
        async with factory() as session:
            ids = await visible_ids(session, after_id, gaps)
            rows = await fetch(session, ids, store_ids) if ids else []
        for event_id in ids:
            if event_id in gaps:
                del gaps[event_id]
            elif event_id > after_id:
                skipped = range(max(after_id + 1, event_id - MAX_GAPS), event_id)
                for gap in skipped:
                    if len(gaps) >= MAX_GAPS:
                        break
                    gaps.setdefault(gap, now + GAP_SECONDS)
                after_id = event_id
        for row in rows:
            # An entry committed late (below one already sent) leaves the SSE id at the
            # highest sent, so a resume does not replay what came after it.
            last_sent = max(last_sent, int(row["id"]))
            yield sse("order", row, last_sent)
        if len(ids) == BATCH:
            continue
        pause = POLL_SECONDS
        if max_seconds is not None:
            left = max_seconds - (loop.time() - started)
            if left <= 0:
                return
            pause = min(pause, left)
        t0 = loop.time()
        await hub.wait(pause)
        if (early := MIN_POLL_SECONDS - (loop.time() - now)) > 0:
            await asyncio.sleep(early)
        idle += loop.time() - t0
        if rows:
            idle = 0.0
        if idle >= KEEPALIVE_SECONDS:
            idle = 0.0
            yield b": keepalive\n\n"
