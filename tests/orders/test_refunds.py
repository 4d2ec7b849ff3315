"""Refunds: by line and quantity or in full, with a reason, within the refunder's limit,
through the original payment channel; the order's state follows."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import Order, OrderLine, Refund, RefundLine
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product


async def _paid_order(session: AsyncSession) -> tuple[Order, list[OrderLine]]:
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=333)
    chips = await make_product(session, name="乐事薯片", stores=[store], price_fen=800)
    order = await make_order(session, store, [(cola, 3), (chips, 1)], status="paid", paid=True)
    lines = list(
        (
            await session.scalars(
                select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)
            )
        ).all()
    )
    return order, lines


async def test_partial_refunds_add_up_to_exactly_what_was_charged(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    order, (cola, chips) = await _paid_order(session)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    url = f"/api/v1/orders/{order.id}/refunds"

    r = await client.post(
        url,
        json={"lines": [{"line_id": cola.id, "quantity": 1}], "reason": "破损", "reference": "R1"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["amount_fen"] == 333
    assert first["status"] == "succeeded"
    assert first["channel"] == "manual"
    assert first["lines"] == [
        {
            "id": first["lines"][0]["id"],
            "order_line_id": cola.id,
            "quantity": 1,
            "amount_fen": 333,
            "disposition": "restock",
        }
    ]
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert d["status"] == "partially_refunded"
    assert d["refunded_fen"] == 333
    moves = [(e["from_status"], e["to_status"]) for e in d["timeline"] if e["kind"] == "transition"]
    assert moves == [("paid", "refund_requested"), ("refund_requested", "partially_refunded")]

    # Two more units and the chips in full: the order is refunded.
    r = await client.post(
        url,
        json={
            "lines": [
                {"line_id": cola.id, "quantity": 2, "disposition": "write_off"},
                {"line_id": chips.id, "quantity": 1},
            ],
            "reason": "顾客退货",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["amount_fen"] == 666 + 800
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert d["status"] == "refunded"
    assert d["refunded_fen"] == d["paid_fen"] == 1799
    assert [ln["refunded_qty"] for ln in d["lines"]] == [3, 1]
    assert len(d["refunds"]) == 2

    r = await client.post(url, json={"full": True, "reason": "again"}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "illegal_transition"


async def test_full_refund_and_uneven_units(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    p = await make_product(session, stores=[store], price_fen=100)
    order = await make_order(session, store, [(p, 3)], status="completed", paid=True)
    line = await session.scalar(select(OrderLine).where(OrderLine.order_id == order.id))
    assert line is not None
    line.amount_fen = 250  # a promotion: 3 for 2.50
    order.total_fen = order.paid_fen = 250
    await session.flush()
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    url = f"/api/v1/orders/{order.id}/refunds"
    r1 = await client.post(
        url, json={"lines": [{"line_id": line.id, "quantity": 1}], "reason": "x"}, headers=h
    )
    assert r1.json()["amount_fen"] == 83  # 250 * 1 // 3
    r2 = await client.post(url, json={"full": True, "reason": "rest"}, headers=h)
    assert r2.json()["amount_fen"] == 167  # the remainder: 83 + 167 == 250
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert d["status"] == "refunded"
    assert d["refunded_fen"] == 250


async def test_a_cashier_may_refund_up_to_the_limit_and_no_more(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    wine = await make_product(session, stores=[store], price_fen=15_000)
    order = await make_order(session, store, [(wine, 2)], status="paid", paid=True)
    line = await session.scalar(select(OrderLine).where(OrderLine.order_id == order.id))
    assert line is not None
    cashier = await make_user(session, role="cashier", stores=[store])
    h = await auth_headers(session, cashier)
    url = f"/api/v1/orders/{order.id}/refunds"
    # The console learns the limit before trying (the built-in cashier role: 200 yuan).
    limit = (await client.get("/api/v1/auth/me", headers=h)).json()["refund_limit_fen"]
    assert 15_000 <= limit < 30_000

    r = await client.post(url, json={"full": True, "reason": "too much"}, headers=h)
    assert r.status_code == 403
    body = r.json()
    assert body["error"] == "refund_limit_exceeded"
    assert body["details"][0]["field"] == "amount_fen"
    assert (
        await session.scalar(select(func.count(Refund.id)).where(Refund.order_id == order.id)) == 0
    )
    assert (await session.get(Order, order.id)).status == "paid"  # type: ignore[union-attr]

    r = await client.post(
        url, json={"lines": [{"line_id": line.id, "quantity": 1}], "reason": "ok"}, headers=h
    )
    assert r.status_code == 201  # 15,000 fen is within the cashier's 20,000

    admin = await make_user(session, role="admin", stores=[store])
    r = await client.post(
        url, json={"full": True, "reason": "admin"}, headers=await auth_headers(session, admin)
    )
    assert r.status_code == 201


async def test_refund_input_errors_name_the_line_and_change_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    order, (cola, _chips) = await _paid_order(session)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    url = f"/api/v1/orders/{order.id}/refunds"
    cases = [
        ({"lines": [{"line_id": cola.id, "quantity": 4}], "reason": "x"}, "lines.0.quantity"),
        ({"lines": [{"line_id": 987654, "quantity": 1}], "reason": "x"}, "lines.0.line_id"),
        ({"lines": [{"line_id": cola.id, "quantity": 0}], "reason": "x"}, "body.lines.0.quantity"),
        ({"lines": [{"line_id": cola.id, "quantity": -1}], "reason": "x"}, "body.lines.0.quantity"),
        ({"lines": [{"line_id": cola.id, "quantity": 1}]}, "body.reason"),
        ({"reason": "nothing named"}, "body"),
        ({"full": True, "lines": [{"line_id": cola.id, "quantity": 1}], "reason": "x"}, "body"),
    ]
    for body, field in cases:
        r = await client.post(url, json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert field in [d["field"] for d in r.json()["details"]], (body, r.json())
    assert (
        await session.scalar(select(func.count(Refund.id)).where(Refund.order_id == order.id)) == 0
    )
    assert (
        await session.scalar(
            select(func.count(RefundLine.id)).where(RefundLine.order_line_id == cola.id)
        )
        == 0
    )
    assert (await session.get(Order, order.id)).status == "paid"  # type: ignore[union-attr]


async def test_an_unpaid_order_cannot_be_refunded(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await make_order(session, store, [(await make_product(session, stores=[store]), 1)])
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds", json={"full": True, "reason": "x"}, headers=h
    )
    assert r.status_code == 409
    assert "awaiting_payment" in r.json()["message"]
    assert "refund_requested" in r.json()["message"]
