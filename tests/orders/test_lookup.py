"""Customers look up their orders (signed receipt link, or number + phone's last four);
terminals read their store's orders by receipt number. Rate-limited; nothing personal shown."""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.orders import receipts
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product
from tests.support import client_with, fingerprint
from tests.terminals.builders import make_active_terminal


async def test_the_receipt_link_shows_status_lines_and_money_but_nobody(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session, name="静安寺自助店", phone="021-62880001")
    cola = await make_product(session, stores=[store], price_fen=350)
    order = await make_order(
        session,
        store,
        [(cola, 2)],
        customer_name="张三",
        customer_phone="13800001234",
        member_no="M9",
    )
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    assert (
        await client.post(f"/api/v1/orders/{order.id}/payments", json={}, headers=h)
    ).status_code == 201

    token = receipts.make_token(order.id)
    r = await client.get(f"/api/v1/public/orders/receipt/{token}")
    assert r.status_code == 200
    body = r.json()
    assert body["order_no"] == order.order_no
    assert body["status"] == "paid"
    assert body["store_name"] == "静安寺自助店"
    assert body["store_contact"] == "021-62880001"  # the store's, for the customer to call
    assert [(ln["name"], ln["quantity"], ln["amount_fen"]) for ln in body["lines"]] == [
        ("可口可乐 500ml", 2, 700)
    ]
    assert [(p["channel"], p["amount_fen"]) for p in body["payments"]] == [("manual", 700)]
    for secret in ("张三", "13800001234", "M9", "customer", "phone", "member", "order_id"):
        assert secret not in r.text
    assert set(body) == {
        "order_no",
        "status",
        "purchased_at",
        "store_name",
        "store_timezone",
        "store_contact",
        "item_count",
        "total_fen",
        "paid_fen",
        "refunded_fen",
        "payment_method",
        "lines",
        "payments",
        "refunds",
        "receipt_token",  # only the look-up by number and phone digits fills it in
    }
    assert body["receipt_token"] is None

    assert receipts.receipt_url(order.id).endswith(f"/r/{token}")


async def test_forged_or_tampered_links_find_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await make_order(session, store, [(await make_product(session, stores=[store]), 1)])
    token = receipts.make_token(order.id)
    assert receipts.read_token(token) == order.id
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    # Another order's id under this order's MAC.
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    moved = struct.pack(">Q", order.id + 1) + raw[8:]
    spliced = base64.urlsafe_b64encode(moved).decode().rstrip("=")
    for bad in (tampered, "x" * 30, spliced):
        r = await client.get(f"/api/v1/public/orders/receipt/{bad}")
        assert r.status_code == 404, bad
        assert r.json()["error"] == "order_not_found"


async def test_number_and_last_four_match_or_the_same_404(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await make_order(
        session,
        store,
        [(await make_product(session, stores=[store]), 1)],
        customer_phone="13912345678",
    )
    url = "/api/v1/public/orders/lookup"
    r = await client.get(url, params={"order_no": order.order_no, "phone_last4": "5678"})
    assert r.status_code == 200
    assert r.json()["order_no"] == order.order_no
    wrong_phone = await client.get(url, params={"order_no": order.order_no, "phone_last4": "0000"})
    wrong_no = await client.get(url, params={"order_no": "2611250000000000", "phone_last4": "5678"})
    assert wrong_phone.status_code == wrong_no.status_code == 404
    assert wrong_phone.json()["message"] == wrong_no.json()["message"]
    r = await client.get(url, params={"order_no": order.order_no, "phone_last4": "56a8"})
    assert r.status_code == 422


async def test_lookups_are_rate_limited_per_address_and_per_order(
    app: Any, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await make_order(
        session,
        store,
        [(await make_product(session, stores=[store]), 1)],
        customer_phone="13912345678",
    )
    url = "/api/v1/public/orders/lookup"
    statuses = []
    for i in range(12):
        r = await client.get(url, params={"order_no": order.order_no, "phone_last4": f"{i:04d}"})
        statuses.append(r.status_code)
    assert statuses[:10] == [404] * 10
    assert statuses[10:] == [429, 429]
    assert "try again" in r.json()["message"]

    # Another address: the order itself has taken its ten wrong guesses this hour.
    transport = httpx.ASGITransport(app=app, client=("198.51.100.30", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        r = await other.get(url, params={"order_no": order.order_no, "phone_last4": "0099"})
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 3600
        # the right phone still finds it: only wrong guesses count against the order
        r = await other.get(url, params={"order_no": order.order_no, "phone_last4": "5678"})
        assert r.status_code == 200


async def test_the_limit_per_address_is_a_setting_and_counts_receipt_links_too(
    db_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    order = await make_order(session, store, [(await make_product(session, stores=[store]), 1)])
    receipt = f"/api/v1/public/orders/receipt/{receipts.make_token(order.id)}"
    lookup_url = "/api/v1/public/orders/lookup"
    async with client_with(db_url, engine, sessionmaker, order_lookup_per_minute=3) as c:
        assert (await c.get(receipt)).status_code == 200
        assert (await c.get(receipt)).status_code == 200
        params = {"order_no": order.order_no, "phone_last4": "0000"}
        assert (await c.get(lookup_url, params=params)).status_code == 404
        before = await fingerprint(session)
        r = await c.get(receipt)
        assert r.status_code == 429
        assert r.json()["error"] == "too_many_requests"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # refused before the query is even validated
        assert (await c.get(lookup_url, params={"order_no": "x"})).status_code == 429
        assert await fingerprint(session) == before


async def test_a_terminal_reads_only_its_own_stores_orders(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    other = await make_store(session)
    p = await make_product(session, stores=[store, other])
    mine = await make_order(session, store, [(p, 1)])
    theirs = await make_order(session, other, [(p, 1)])
    creds = await make_active_terminal(session, store)
    for order, expected in ((mine, 200), (theirs, 404)):
        target = f"/api/terminal/v1/orders/{order.order_no}"
        r = await client.get(target, headers=creds.sign("GET", target))
        assert r.status_code == expected
    target = f"/api/terminal/v1/orders/{mine.order_no}"
    assert (await client.get(target)).status_code == 401
