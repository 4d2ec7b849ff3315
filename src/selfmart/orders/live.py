"""Live order updates for the console: server-sent events fed by the order timeline.

The timeline (order_events) is the feed: its ids only grow, so a client resumes from the
last id it saw (`Last-Event-ID`). Commits in this process wake the streams at once; commits in
other processes (several API workers) are seen by the periodic poll.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.models import Order, OrderEvent

POLL_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0
BATCH = 200


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


async def fetch_after(
    session: AsyncSession, after_id: int, store_ids: frozenset[int] | None
) -> list[dict[str, Any]]:
    """Timeline entries after `after_id`, joined with the order's list fields."""
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
        .where(OrderEvent.id > after_id)
        .order_by(OrderEvent.id)
        .limit(BATCH)
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
) -> AsyncIterator[bytes]:
    """The event stream of one console: `order` events, then a `ping` when idle."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    if after_id is None:
        async with factory() as session:
            after_id = await latest_event_id(session)
    yield b"retry: 3000\n\n"
    yield sse("ready", {"last_event_id": after_id}, after_id)
    idle = 0.0
    while True:
        if await is_disconnected():
            return
        async with factory() as session:
            rows = await fetch_after(session, after_id, store_ids)
        for row in rows:
            after_id = int(row["id"])
            yield sse("order", row, after_id)
        if len(rows) == BATCH:
            continue
        pause = POLL_SECONDS
        if max_seconds is not None:
            left = max_seconds - (loop.time() - started)
            if left <= 0:
                return
            pause = min(pause, left)
        t0 = loop.time()
        await hub.wait(pause)
        idle += loop.time() - t0
        if rows:
            idle = 0.0
        if idle >= KEEPALIVE_SECONDS:
            idle = 0.0
            yield b": keepalive\n\n"
