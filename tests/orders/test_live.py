"""The console's live order feed: server-sent events from the order timeline, per store."""

from __future__ import annotations

import json

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

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
