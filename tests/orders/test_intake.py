"""Intake from terminals: signed, priced on the server, booked into the stock ledger in the
same transaction, accepted exactly once per client order id; bad input is a clear 4xx and
leaves nothing behind."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.inventory import service as inventory
from selfmart.kit.time import utcnow
from selfmart.models import (
    AuditLog,
    Order,
    OrderEvent,
    OrderIssue,
    OrderLine,
    Product,
    Store,
    TerminalNonce,
)
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_product, stock
from tests.terminals.builders import Credentials, make_active_terminal

URL = "/api/terminal/v1/orders"


def _order(client_id: str = "T1-000001", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_order_id": client_id,
        "purchased_at": (utcnow() - timedelta(minutes=1)).isoformat(),
        "lines": [],
    }
    body.update(extra)
    return body


async def _post(
    client: httpx.AsyncClient, creds: Credentials, payload: Any, target: str = URL
) -> httpx.Response:
    body, headers = creds.signed_json("POST", target, payload)
    return await client.post(target, content=body, headers=headers)


async def _counts(session: AsyncSession) -> tuple[int, ...]:
    out = []
    for model in (Order, OrderLine, OrderEvent, OrderIssue):
        out.append(int(await session.scalar(select(func.count()).select_from(model)) or 0))
    return tuple(out)


async def _setup(
    session: AsyncSession, barcode: str | None = "6901234567892", **store_fields: Any
) -> tuple[Store, Credentials, Product, Product]:
    store = await make_store(session, **store_fields)
    cola = await make_product(
        session, stores=[store], price_fen=350, member_price_fen=300, barcode=barcode
    )
    chips = await make_product(session, name="乐事薯片", stores=[store], price_fen=800)
    await stock(session, store, cola, 10)
    await stock(session, store, chips, 10)
    creds = await make_active_terminal(session, store)
    return store, creds, cola, chips


async def test_an_order_is_priced_booked_and_timelined(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, cola, chips = await _setup(session)
    payload = _order(
        lines=[
            {"barcode": "6901234567892", "quantity": 2, "unit_price_fen": 350},
            {"product_id": chips.id, "quantity": 1, "unit_price_fen": 800},
        ],
        total_fen=1500,
    )
    r = await _post(client, creds, payload)
    assert r.status_code == 201, r.text
    res = r.json()
    assert res["outcome"] == "created"
    assert res["status"] == "awaiting_payment"
    assert res["total_fen"] == 1500
    assert res["price_mismatch"] is False
    assert res["price_differences"] == []
    assert len(res["order_no"]) == 16
    assert res["order_no"].isdigit()
    assert "/r/" in res["receipt_url"]

    order = await session.get_one(Order, res["order_id"])
    assert order.stock_booked is True
    assert order.terminal_id == creds.terminal.id
    assert order.expires_at is not None
    assert await inventory.balances(session, store.id, [cola.id, chips.id]) == {
        cola.id: 8,
        chips.id: 9,
    }
    events = (
        await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        )
    ).all()
    assert [(e.from_status, e.to_status, e.actor_type) for e in events] == [
        (None, "created", "terminal"),
        ("created", "awaiting_payment", "terminal"),
    ]
    entry = await session.scalar(
        select(AuditLog).where(
            AuditLog.action == "order.create", AuditLog.entity_id == str(order.id)
        )
    )
    assert entry is not None
    assert entry.actor_type == "terminal"

    # The console finds it with its lines.
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert [(ln["product_id"], ln["quantity"], ln["amount_fen"]) for ln in d["lines"]] == [
        (cola.id, 2, 700),
        (chips.id, 1, 800),
    ]


async def test_the_server_prices_and_reports_what_the_terminal_showed(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, cola, chips = await _setup(session)
    # An older terminal's bare member_no proves nothing: the order is priced as a guest's,
    # whatever member price the terminal showed, and the difference is an issue.
    payload = _order(
        lines=[
            {"barcode": "6901234567892", "quantity": 2, "unit_price_fen": 300},  # guest: 350
            {"product_id": chips.id, "quantity": 1, "unit_price_fen": 800},
        ],
        member={"member_no": "M001", "name": "李四", "phone": "138-0000-5678"},
        total_fen=1400,
    )
    r = await _post(client, creds, payload)
    assert r.status_code == 201, r.text
    res = r.json()
    assert res["total_fen"] == 1500  # the guest's price, whatever the terminal showed
    assert (res["subtotal_fen"], res["discount_fen"], res["saved_fen"]) == (1500, 0, 0)
    assert res["price_mismatch"] is True
    assert res["price_differences"] == [
        {"line_no": 1, "product_id": cola.id, "terminal_unit_price_fen": 300, "unit_price_fen": 350}
    ]
    assert (res["member_no"], res["warnings"]) == (None, ["member_unverified"])
    order = await session.get_one(Order, res["order_id"])
    assert (order.member_id, order.member_no, order.customer_phone, order.phone_last4) == (
        None,
        "M001",
        "13800005678",
        "5678",
    )
    assert order.open_issues == 1
    issue = await session.scalar(select(OrderIssue).where(OrderIssue.order_id == order.id))
    assert issue is not None
    assert issue.kind == "price_mismatch"
    assert issue.detail["terminal_total_fen"] == 1400


async def test_the_same_order_twice_is_one_order_and_another_body_is_a_409(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, cola, _chips = await _setup(session)
    payload = _order(lines=[{"barcode": "6901234567892", "quantity": 1}])
    first = await _post(client, creds, payload)
    assert first.status_code == 201
    before = await _counts(session)

    # Same order, keys in another order: the same answer, nothing new.
    reordered = dict(reversed(list(payload.items())))
    again = await _post(client, creds, reordered)
    assert again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["order_no"] == first.json()["order_no"]
    assert await _counts(session) == before
    assert await inventory.balances(session, store.id, [cola.id]) == {cola.id: 9}

    changed = _order(lines=[{"barcode": "6901234567892", "quantity": 2}])
    r = await _post(client, creds, changed)
    assert r.status_code == 409
    assert r.json()["error"] == "idempotency_conflict"
    assert r.json()["details"][0]["field"] == "client_order_id"
    assert await _counts(session) == before
    assert await inventory.balances(session, store.id, [cola.id]) == {cola.id: 9}

    # Another terminal may use the same client order id: it is its own order.
    other = await make_active_terminal(session, store)
    r = await _post(client, other, payload)
    assert r.status_code == 201
    assert r.json()["order_no"] != first.json()["order_no"]


async def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, cola, _chips = await _setup(session)
    unlisted = await make_product(session, name="别处的货")
    before = await _counts(session)
    nonces = await session.scalar(select(func.count()).select_from(TerminalNonce))
    good_line = {"barcode": "6901234567892", "quantity": 1}

    cases: list[tuple[Any, int, str]] = [
        (_order(lines=[{"barcode": "0000000000000", "quantity": 1}]), 422, "lines.0.barcode"),
        (
            _order(lines=[good_line, {"product_id": 99999999, "quantity": 1}]),
            422,
            "lines.1.product_id",
        ),
        (_order(lines=[{"product_id": unlisted.id, "quantity": 1}]), 422, "lines.0.product_id"),
        (_order(lines=[{"barcode": "6901234567892", "quantity": 0}]), 422, "body.lines.0.quantity"),
        (
            _order(lines=[{"barcode": "6901234567892", "quantity": -3}]),
            422,
            "body.lines.0.quantity",
        ),
        (
            _order(lines=[{"barcode": "6901234567892", "quantity": 1.5}]),
            422,
            "body.lines.0.quantity",
        ),
        (_order(lines=[]), 422, "body.lines"),
        (_order(lines=[good_line] * 10_000), 422, "body.lines"),
        (_order(lines=[{"quantity": 1}]), 422, "body.lines.0"),
        (
            _order(lines=[good_line], purchased_at="2026-01-01T10:00:00"),
            422,
            "body.purchased_at",
        ),
        (
            _order(lines=[good_line], purchased_at=(utcnow() + timedelta(days=1)).isoformat()),
            422,
            "purchased_at",
        ),
        (_order(lines=[good_line], total_fen=-1), 422, "body.total_fen"),
        (_order(lines=[good_line], surprise=True), 422, "body.surprise"),
    ]
    for payload, status, field in cases:
        r = await _post(client, creds, payload)
        assert r.status_code == status, (payload.get("lines", [])[:2], r.text[:300])
        fields = [d["field"] for d in r.json()["details"]]
        assert field in fields, (field, fields)

    # Not JSON at all.
    raw = b"client_order_id=1&lines=cola"
    headers = creds.sign("POST", URL, raw)
    r = await client.post(URL, content=raw, headers={**headers, "content-type": "application/json"})
    assert r.status_code == 422
    # A wrong signature, a stale timestamp, a replayed nonce.
    body, headers = creds.signed_json("POST", URL, _order(lines=[good_line]))
    bad = {**headers, "X-Selfmart-Signature": "0" * 64}
    assert (await client.post(URL, content=body, headers=bad)).status_code == 401
    body, headers = creds.signed_json(
        "POST", URL, _order(lines=[good_line]), timestamp=int(utcnow().timestamp()) - 3600
    )
    r = await client.post(URL, content=body, headers=headers)
    assert r.status_code == 401
    assert r.json()["details"][0]["field"] == "X-Selfmart-Timestamp"
    body, headers = creds.signed_json("POST", URL, _order("replay-1", lines=[good_line]))
    assert (await client.post(URL, content=body, headers=headers)).status_code == 201
    created = await _counts(session)
    r = await client.post(URL, content=body, headers=headers)
    assert r.status_code == 401
    assert r.json()["details"][0]["field"] == "X-Selfmart-Nonce"
    assert await _counts(session) == created
    # Nothing but the one good order was written, not even the refused requests' nonces.
    assert created[0] == before[0] + 1
    assert (
        await session.scalar(select(func.count()).select_from(TerminalNonce)) == (nonces or 0) + 1
    )
    assert await inventory.balances(session, store.id, [cola.id]) == {cola.id: 9}


async def test_stock_short_books_and_raises_or_refuses_by_the_stores_setting(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    # An unmanned store (the default) books the sale past the shelf and raises an issue.
    store, creds, cola, _chips = await _setup(session)
    await stock(session, store, cola, 1)
    r = await _post(client, creds, _order(lines=[{"barcode": "6901234567892", "quantity": 3}]))
    assert r.status_code == 201
    res = r.json()
    assert res["status"] == "awaiting_payment"
    assert res["stock_short"] is True
    assert await inventory.balances(session, store.id, [cola.id]) == {cola.id: -2}
    issue = await session.scalar(select(OrderIssue).where(OrderIssue.order_id == res["order_id"]))
    assert issue is not None
    assert issue.kind == "stock_short"
    assert issue.detail["lines"] == [{"product_id": cola.id, "requested": 3, "short_by": 2}]

    # A store that refuses to oversell: out of stock, nothing booked, an issue for a person.
    strict, creds2, cola2, _ = await _setup(session, barcode=None, allow_negative_stock=False)
    await stock(session, strict, cola2, 1)
    body = _order(lines=[{"product_id": cola2.id, "quantity": 3}])
    r = await _post(client, creds2, body)
    assert r.status_code == 201
    res = r.json()
    assert res["status"] == "out_of_stock"
    assert await inventory.balances(session, strict.id, [cola2.id]) == {cola2.id: 1}
    order = await session.get_one(Order, res["order_id"])
    assert order.stock_booked is False
    assert order.expires_at is None
    assert order.open_issues == 1


async def test_cancel_and_close_put_the_goods_back(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, cola, _chips = await _setup(session)
    r = await _post(client, creds, _order(lines=[{"barcode": "6901234567892", "quantity": 4}]))
    order_id = r.json()["order_id"]
    assert await inventory.balances(session, store.id, [cola.id]) == {cola.id: 6}
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{order_id}/cancel", json={"reason": "顾客放弃"}, headers=h
    )
    assert r.status_code == 200
    assert await inventory.balances(session, store.id, [cola.id]) == {cola.id: 10}
    assert r.json()["stock_booked"] is False


async def test_refunded_goods_go_back_to_stock_only_when_resellable(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, cola, chips = await _setup(session)
    r = await _post(
        client,
        creds,
        _order(
            lines=[
                {"barcode": "6901234567892", "quantity": 2},
                {"product_id": chips.id, "quantity": 2},
            ]
        ),
    )
    order_id = r.json()["order_id"]
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    assert (
        await client.post(f"/api/v1/orders/{order_id}/payments", json={}, headers=h)
    ).status_code == 201
    lines = (await client.get(f"/api/v1/orders/{order_id}", headers=h)).json()["lines"]
    r = await client.post(
        f"/api/v1/orders/{order_id}/refunds",
        json={
            "lines": [
                {"line_id": lines[0]["id"], "quantity": 2, "disposition": "restock"},
                {"line_id": lines[1]["id"], "quantity": 1, "disposition": "write_off"},
            ],
            "reason": "顾客退货",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert await inventory.balances(session, store.id, [cola.id, chips.id]) == {
        cola.id: 10,
        chips.id: 8,
    }


async def test_an_offline_batch_is_accepted_once_with_per_order_results(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, cola, _chips = await _setup(session)
    old = (utcnow() - timedelta(hours=5)).isoformat()
    orders = [
        _order(f"OFF-{i}", purchased_at=old, lines=[{"barcode": "6901234567892", "quantity": 1}])
        for i in range(4)
    ]
    orders[2]["lines"] = [{"barcode": "0000000000000", "quantity": 1}]  # unknown: refused

    # The terminal lost the answer after the server took the first half; it sends it all again.
    r = await _post(client, creds, {"orders": orders[:2]}, URL + "/batch")
    assert r.status_code == 200
    assert r.json()["created"] == 2
    r = await _post(client, creds, {"orders": orders}, URL + "/batch")
    assert r.status_code == 200, r.text
    res = r.json()
    assert (res["created"], res["duplicates"], res["rejected"]) == (1, 2, 1)
    assert [x["outcome"] for x in res["results"]] == [
        "duplicate",
        "duplicate",
        "rejected",
        "created",
    ]
    assert res["results"][2]["error"]["error"] == "unknown_product"
    assert res["results"][2]["error"]["details"][0]["field"] == "lines.0.barcode"

    # And once more, whole: every order still once.
    r = await _post(client, creds, {"orders": orders}, URL + "/batch")
    assert [x["outcome"] for x in r.json()["results"]] == [
        "duplicate",
        "duplicate",
        "rejected",
        "duplicate",
    ]
    n = await session.scalar(
        select(func.count()).select_from(Order).where(Order.terminal_id == creds.terminal.id)
    )
    assert n == 3
    assert await inventory.balances(session, store.id, [cola.id]) == {cola.id: 7}
    offline = await session.scalar(
        select(Order).where(
            Order.client_order_id == "OFF-0", Order.terminal_id == creds.terminal.id
        )
    )
    assert offline is not None
    assert offline.source == "offline"
    assert offline.expires_at is None  # not closed by the timer: the goods are long gone
    assert offline.purchased_at < offline.created_at - timedelta(hours=4)


async def test_a_batch_body_that_is_too_big_or_not_a_batch_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, _cola, _chips = await _setup(session)
    one = _order(lines=[{"barcode": "6901234567892", "quantity": 1}])
    before = await _counts(session)
    r = await _post(client, creds, {"orders": [one] * 201}, URL + "/batch")
    assert r.status_code == 422
    r = await _post(client, creds, {"orders": []}, URL + "/batch")
    assert r.status_code == 422
    r = await _post(client, creds, [one], URL + "/batch")
    assert r.status_code == 422
    assert await _counts(session) == before


async def _issue_id(client: httpx.AsyncClient, h: dict[str, str], order_id: int) -> int:
    d = (await client.get(f"/api/v1/orders/{order_id}", headers=h)).json()
    return int(next(i["id"] for i in d["issues"] if i["kind"] == "stock_short"))


async def test_out_of_stock_lines_are_cancelled_and_the_rest_waits_for_payment(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, cola, chips = await _setup(session, barcode=None, allow_negative_stock=False)
    await stock(session, store, cola, 1)
    body = _order(
        lines=[{"product_id": cola.id, "quantity": 3}, {"product_id": chips.id, "quantity": 2}]
    )
    res = (await _post(client, creds, body)).json()
    assert res["status"] == "out_of_stock"
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    issue_id = await _issue_id(client, h, res["order_id"])

    r = await client.post(
        f"/api/v1/orders/issues/{issue_id}/actions",
        json={"action": "cancel_lines", "note": "货架上只有一瓶"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    d = (await client.get(f"/api/v1/orders/{res['order_id']}", headers=h)).json()
    assert d["status"] == "awaiting_payment"
    assert d["total_fen"] == 1600
    assert d["item_count"] == 2
    assert [(ln["quantity"], ln["cancelled_qty"]) for ln in d["lines"]] == [(3, 3), (2, 0)]
    assert d["stock_booked"] is True
    assert await inventory.balances(session, store.id, [cola.id, chips.id]) == {
        cola.id: 1,
        chips.id: 8,
    }
    # It is paid for what is left, and a refund cannot reach the cancelled units.
    r = await client.post(f"/api/v1/orders/{res['order_id']}/payments", json={}, headers=h)
    assert r.json()["amount_fen"] == 1600
    r = await client.post(
        f"/api/v1/orders/{res['order_id']}/refunds", json={"full": True, "reason": "x"}, headers=h
    )
    assert r.json()["amount_fen"] == 1600


async def test_a_substitute_replaces_a_missing_line_before_payment(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, cola, chips = await _setup(session, barcode=None, allow_negative_stock=False)
    await stock(session, store, cola, 0)
    res = (
        await _post(client, creds, _order(lines=[{"product_id": cola.id, "quantity": 2}]))
    ).json()
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    issue_id = await _issue_id(client, h, res["order_id"])
    line_id = (await client.get(f"/api/v1/orders/{res['order_id']}", headers=h)).json()["lines"][0][
        "id"
    ]
    r = await client.post(
        f"/api/v1/orders/issues/{issue_id}/actions",
        json={"action": "substitute_lines", "substitutes": {str(line_id): chips.id}},
        headers=h,
    )
    assert r.status_code == 200, r.text
    d = (await client.get(f"/api/v1/orders/{res['order_id']}", headers=h)).json()
    assert d["status"] == "awaiting_payment"
    assert [(ln["product_id"], ln["quantity"] - ln["cancelled_qty"]) for ln in d["lines"]] == [
        (cola.id, 0),
        (chips.id, 2),
    ]
    assert d["total_fen"] == 1600
    assert await inventory.balances(session, store.id, [chips.id]) == {chips.id: 8}


async def test_cancelling_a_line_booked_past_the_shelf_puts_it_back(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, cola, chips = await _setup(session)
    await stock(session, store, cola, 1)
    res = (
        await _post(
            client,
            creds,
            _order(
                lines=[
                    {"product_id": cola.id, "quantity": 2},
                    {"product_id": chips.id, "quantity": 1},
                ]
            ),
        )
    ).json()
    assert res["stock_short"] is True
    assert await inventory.balances(session, store.id, [cola.id]) == {cola.id: -1}
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    issue_id = await _issue_id(client, h, res["order_id"])
    r = await client.post(
        f"/api/v1/orders/issues/{issue_id}/actions", json={"action": "cancel_lines"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert await inventory.balances(session, store.id, [cola.id]) == {cola.id: 1}
    d = (await client.get(f"/api/v1/orders/{res['order_id']}", headers=h)).json()
    assert d["total_fen"] == 800
    assert d["status"] == "awaiting_payment"
