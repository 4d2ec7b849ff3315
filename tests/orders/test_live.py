"""The console's live order feed: server-sent events from the order timeline, per store."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.kit.time import utcnow
from selfmart.models import Order, OrderEvent
from selfmart.orders import live
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product


def _events(text: str) -> list[tuple[str, dict[str, object], str | None]]:
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if "event" in fields:
            out.append((fields["event"], json.loads(fields.get("data", "{}")), fields.get("id")))
    return out


def _entry(order: Order, event_id: int) -> OrderEvent:
    """A timeline entry with a chosen id (as a transaction that drew it would write it)."""
    return OrderEvent(
        id=event_id,
        order_id=order.id,
        store_id=order.store_id,
        occurred_at=utcnow(),
        kind="note",
        actor_type="system",
        reason=f"entry {event_id}",
        data={},
    )


async def test_the_feed_streams_each_timeline_entry_of_the_actors_stores(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    mine = await make_store(session)
    other = await make_store(session)
    p = await make_product(session, stores=[mine, other], price_fen=500)
    o_mine = await make_order(session, mine, [(p, 1)])
    o_other = await make_order(session, other, [(p, 1)])
    root = await auth_headers(session, await make_user(session, role="super_admin"))
    for order in (o_mine, o_other):
        r = await client.post(f"/api/v1/orders/{order.id}/payments", json={}, headers=root)
        assert r.status_code == 201

    admin = await auth_headers(session, await make_user(session, role="admin", stores=[mine]))
    r = await client.get("/api/v1/orders/live", params={"after": 0, "timeout": 1}, headers=admin)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    assert events[0][0] == "ready"
    orders = [data for kind, data, _ in events if kind == "order"]
    assert {d["order_id"] for d in orders} == {o_mine.id}
    assert [(d["kind"], d["to_status"]) for d in orders] == [
        ("payment", None),
        ("transition", "paid"),
    ]
    assert orders[-1]["status"] == "paid"
    assert orders[-1]["total_fen"] == 500
    last_id = events[-1][2]
    assert last_id is not None

    # Resuming from the last id sends nothing old.
    r = await client.get(
        "/api/v1/orders/live",
        params={"timeout": 1},
        headers={**admin, "Last-Event-ID": last_id},
    )
    assert [k for k, _, _ in _events(r.text)] == ["ready"]
    assert (await client.get("/api/v1/orders/live", params={"timeout": 1})).status_code == 401


async def test_an_entry_committed_after_a_later_one_was_sent_is_still_sent(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Timeline ids are drawn at insert, not at commit: with orders arriving concurrently, id
    n+2 can be visible while n+1's transaction still runs. The stream must not skip n+1."""
    store = await make_store(session)
    p = await make_product(session, stores=[store], price_fen=500)
    order = await make_order(session, store, [(p, 1)])
    base = (await session.scalar(select(func.max(OrderEvent.id))) or 0) + 1000

    session.add(_entry(order, base + 2))  # the later transaction commits first
    await session.commit()

    async def never() -> bool:
        return False

    feed = live.stream(
        sessionmaker, store_ids=None, after_id=base, is_disconnected=never, max_seconds=5
    )
    sent: list[tuple[str, dict[str, object], str | None]] = []

    async def next_order_event() -> dict[str, object]:
        while True:
            chunk = await anext(feed)
            for event in _events(chunk.decode()):
                sent.append(event)
                if event[0] == "order":
                    return event[1]

    first = await next_order_event()
    assert first["id"] == base + 2
    session.add(_entry(order, base + 1))  # ... and the earlier one only now
    await session.commit()
    live.hub.wake()
    late = await next_order_event()
    assert late["id"] == base + 1
    assert late["reason"] == f"entry {base + 1}"
    # Its SSE id stays the highest sent: a resume from it does not replay base + 2.
    assert sent[-1][2] == str(base + 2)
    await feed.aclose()


async def test_an_entry_below_the_starting_point_committed_later_is_sent(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A console connecting (or resuming) starts after the highest committed id; an entry
    with a lower id whose transaction was still running then must still reach it."""
    store = await make_store(session)
    p = await make_product(session, stores=[store], price_fen=500)
    order = await make_order(session, store, [(p, 1)])
    base = (await session.scalar(select(func.max(OrderEvent.id))) or 0) + 1000

    session.add(_entry(order, base + 2))
    await session.commit()

    async def never() -> bool:
        return False

    feed = live.stream(
        sessionmaker, store_ids=None, after_id=None, is_disconnected=never, max_seconds=5
    )
    ready = _events((await anext(feed)).decode() + (await anext(feed)).decode())
    assert ready[-1][:2] == ("ready", {"last_event_id": base + 2})
    session.add(_entry(order, base + 1))  # its transaction was running when the console connected
    await session.commit()
    live.hub.wake()
    while True:
        events = [e for e in _events((await anext(feed)).decode()) if e[0] == "order"]
        if events:
            break
    assert events[0][1]["id"] == base + 1
    await feed.aclose()
