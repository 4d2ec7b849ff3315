"""Refund requests: a refund above the cashier's limit waits for someone whose limit covers
it, who approves it (the refund is made, as them) or rejects it with a note; audited, on the
order's timeline, and decided once even when two people click at the same moment."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from selfmart.db import make_sessionmaker
from selfmart.iam.actor import Actor
from selfmart.iam.permissions import Perm
from selfmart.models import (
    AuditLog,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    ProductBarcode,
    Refund,
    RefundLine,
    StockLevel,
    StockMovement,
    Store,
    StoreProduct,
)
from selfmart.models.order import RefundRequest
from selfmart.orders import lifecycle, refund_requests
from selfmart.orders.exceptions import RefundRequestDecided
from selfmart.orders.schemas import RefundBody
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product


async def _wine_order(session: AsyncSession, store: Store) -> Order:
    wine = await make_product(session, stores=[store], price_fen=13_770)
    return await make_order(session, store, [(wine, 2)], status="paid", paid=True)


async def _audit(session: AsyncSession, order: Order) -> list[str]:
    return list(
        (
            await session.scalars(
                select(AuditLog.action)
                .where(AuditLog.entity_type == "order", AuditLog.entity_id == str(order.id))
                .order_by(AuditLog.id)
            )
        ).all()
    )


async def test_a_refund_above_the_cashier_s_limit_waits_for_a_manager_who_approves_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await _wine_order(session, store)  # 275.40 yuan, above the cashier's 200
    cashier = await make_user(session, role="cashier", stores=[store])
    ch = await auth_headers(session, cashier)
    other_cashier = await auth_headers(
        session, await make_user(session, role="cashier", stores=[store])
    )
    manager = await auth_headers(session, await make_user(session, role="admin", stores=[store]))
    elsewhere = await auth_headers(
        session, await make_user(session, role="admin", stores=[await make_store(session)])
    )
    full = {"full": True, "reason": "整箱破损", "disposition": "write_off"}

    r = await client.post(f"/api/v1/orders/{order.id}/refunds", json=full, headers=ch)
    assert r.status_code == 403
    assert r.json()["error"] == "refund_limit_exceeded"
    assert "275.40 yuan" in r.json()["message"]
    assert "200.00 yuan" in r.json()["message"]

    r = await client.post(f"/api/v1/orders/{order.id}/refund-requests", json=full, headers=ch)
    assert r.status_code == 201, r.text
    request = r.json()
    assert request["status"] == "pending"
    assert request["amount_fen"] == 27_540
    assert request["requester_limit_fen"] == 20_000
    assert request["can_decide"] is False
    r = await client.post(f"/api/v1/orders/{order.id}/refund-requests", json=full, headers=ch)
    assert r.status_code == 409
    assert r.json()["details"][0]["reason"] == "pending_request"
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("paid", 0)  # nothing refunded yet

    async def queue(h: dict[str, str]) -> list[tuple[int, bool]]:
        r = await client.get("/api/v1/orders/refund-requests", headers=h)
        assert r.status_code == 200, r.text
        return [(i["id"], i["can_decide"]) for i in r.json()["items"]]

    assert await queue(ch) == [(request["id"], False)]  # their own, to follow
    assert await queue(other_cashier) == []  # not theirs, and above their limit
    assert await queue(manager) == [(request["id"], True)]
    assert await queue(elsewhere) == []

    url = f"/api/v1/orders/refund-requests/{request['id']}"
    r = await client.post(f"{url}/approve", json={}, headers=other_cashier)
    assert r.status_code == 403
    assert r.json()["error"] == "refund_limit_exceeded"
    r = await client.post(f"{url}/approve", json={}, headers=elsewhere)
    assert r.status_code == 404
    r = await client.post(f"{url}/approve", json={"note": "核实无误"}, headers=manager)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "approved"
    assert done["decided_by"] != cashier.username
    assert done["refund_id"] is not None
    r = await client.post(f"{url}/reject", json={"note": "晚了"}, headers=manager)
    assert r.status_code == 409
    assert r.json()["error"] == "refund_request_decided"

    d = (await client.get(f"/api/v1/orders/{order.id}", headers=manager)).json()
    assert d["status"] == "refunded"
    assert d["refunded_fen"] == 27_540
    assert [(x["amount_fen"], x["actor_name"]) for x in d["refunds"]] == [
        (27_540, done["decided_by"])
    ]
    reasons = [e["reason"] for e in d["timeline"]]
    assert "refund_approval_requested" in reasons
    assert "refund_approval_approved" in reasons
    actions = await _audit(session, order)
    assert actions.index("order.refund_approval.request") < actions.index(
        "order.refund_approval.approve"
    )
    assert "order.refund" in actions
    r = await client.get(
        "/api/v1/orders/refund-requests", params={"status": "approved"}, headers=manager
    )
    assert [i["order_no"] for i in r.json()["items"]] == [order.order_no]


async def test_a_rejected_request_says_why_and_refunds_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await _wine_order(session, store)
    ch = await auth_headers(session, await make_user(session, role="cashier", stores=[store]))
    manager = await auth_headers(session, await make_user(session, role="admin", stores=[store]))
    r = await client.post(
        f"/api/v1/orders/{order.id}/refund-requests",
        json={"full": True, "reason": "顾客不想要了"},
        headers=ch,
    )
    url = f"/api/v1/orders/refund-requests/{r.json()['id']}/reject"

    r = await client.post(url, json={}, headers=manager)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "note"
    r = await client.post(url, json={"note": "已开封，不退"}, headers=manager)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decision_note"]) == ("rejected", "已开封，不退")
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("paid", 0)
    assert (
        await session.scalar(select(func.count(Refund.id)).where(Refund.order_id == order.id)) == 0
    )
    assert "order.refund_approval.reject" in await _audit(session, order)
    events = (
        await session.scalars(select(OrderEvent.reason).where(OrderEvent.order_id == order.id))
    ).all()
    assert "refund_approval_rejected" in events
    # A request that could never work is refused when it is made, not when it is approved.
    r = await client.post(
        f"/api/v1/orders/{order.id}/refund-requests",
        json={"lines": [{"line_id": 2**40, "quantity": 1}], "reason": "x"},
        headers=ch,
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "lines.0.line_id"


async def test_a_difference_above_the_cashier_s_limit_waits_for_approval_too(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """An overpayment of 250 yuan: the cashier's "refund the difference" becomes a request; the
    abnormal order stays open (offering no second refund) until an admin approves it."""
    store = await make_store(session)
    p = await make_product(session, stores=[store], price_fen=5_000)
    order = await make_order(session, store, [(p, 1)])
    admin = await auth_headers(session, await make_user(session, role="admin", stores=[store]))
    ch = await auth_headers(session, await make_user(session, role="cashier", stores=[store]))
    r = await client.post(  # the cashier collects 300 yuan by hand for a 50 yuan order
        f"/api/v1/orders/{order.id}/payments", json={"amount_fen": 30_000}, headers=ch
    )
    assert r.status_code == 201, r.text
    r = await client.get("/api/v1/orders/issues", params={"kind": "amount_mismatch"}, headers=ch)
    issue = next(i for i in r.json()["items"] if i["order_id"] == order.id)
    assert issue["difference_fen"] == 25_000
    assert "refund_difference" in issue["actions"]

    url = f"/api/v1/orders/issues/{issue['id']}/actions"
    r = await client.post(url, json={"action": "refund_difference", "note": "多付"}, headers=ch)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open"
    request_id = r.json()["detail"]["refund_request_id"]
    assert "refund_difference" not in r.json()["actions"]  # one request is enough
    r = await client.post(url, json={"action": "refund_difference"}, headers=ch)
    assert r.status_code == 409
    assert r.json()["details"][0]["reason"] == "pending_request"
    await session.refresh(order)
    assert order.refunded_fen == 0

    r = await client.get("/api/v1/orders/refund-requests", headers=admin)
    item = next(i for i in r.json()["items"] if i["id"] == request_id)
    assert (item["amount_fen"], item["can_decide"]) == (25_000, True)
    r = await client.post(
        f"/api/v1/orders/refund-requests/{request_id}/approve", json={}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["refund_id"] is not None
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=admin)).json()
    assert d["refunded_fen"] == 25_000
    assert d["status"] == "paid"
    assert [(i["kind"], i["status"]) for i in d["issues"]] == [("amount_mismatch", "resolved")]


async def test_two_approvals_at_once_refund_once(engine: AsyncEngine, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections: PostgreSQL only")
    factory = make_sessionmaker(engine)
    cashier = Actor(
        kind="user",
        id=None,
        name="cashier",
        permissions=frozenset({Perm.ORDER_REFUND.value}),
        store_ids=None,
        refund_limit_fen=20_000,
    )
    managers = [
        Actor(kind="user", id=None, name=f"manager{i}", permissions=frozenset(Perm), store_ids=None)
        for i in range(4)
    ]
    async with factory() as s:
        store = await make_store(s, code=f"R{uuid.uuid4().hex[:6].upper()}")
        order = await _wine_order(s, store)
        request = await refund_requests.create(
            s, order, RefundBody(full=True, reason="破损", disposition="write_off"), actor=cashier
        )
        await s.commit()
        store_id, order_id, request_id = store.id, order.id, request.id
        product_id = await s.scalar(
            select(OrderLine.product_id).where(OrderLine.order_id == order_id)
        )

    async def approve(actor: Actor) -> str:
        async with factory() as s:
            req = await s.get_one(RefundRequest, request_id)
            try:
                await refund_requests.approve(s, req, note=None, actor=actor)
            except RefundRequestDecided:
                await s.rollback()
                return "refused"
            await s.commit()
            return "approved"

    try:
        outcomes = await asyncio.gather(*(approve(m) for m in managers))
        async with factory() as s:
            refunded = await s.scalar(select(Order.refunded_fen).where(Order.id == order_id))
            refunds = await s.scalar(
                select(func.count()).select_from(Refund).where(Refund.order_id == order_id)
            )
            decided_by = await s.scalar(
                select(RefundRequest.decided_by).where(RefundRequest.id == request_id)
            )
        assert sorted(outcomes) == ["approved"] + ["refused"] * 3
        assert refunds == 1
        assert refunded == 27_540
        assert decided_by in {m.name for m in managers}
    finally:
        async with factory() as s:
            await s.execute(delete(RefundRequest).where(RefundRequest.order_id == order_id))
            refund_ids = select(Refund.id).where(Refund.order_id == order_id)
            await s.execute(delete(RefundLine).where(RefundLine.refund_id.in_(refund_ids)))
            await s.execute(delete(Refund).where(Refund.order_id == order_id))
            await s.execute(delete(Payment).where(Payment.order_id == order_id))
            await s.execute(delete(OrderEvent).where(OrderEvent.order_id == order_id))
            await s.execute(delete(AuditLog).where(AuditLog.store_id == store_id))
            await s.execute(delete(OrderLine).where(OrderLine.order_id == order_id))
            await s.execute(delete(Order).where(Order.id == order_id))
            await s.execute(delete(StockMovement).where(StockMovement.store_id == store_id))
            await s.execute(delete(StockLevel).where(StockLevel.store_id == store_id))
            await s.execute(delete(StoreProduct).where(StoreProduct.store_id == store_id))
            await s.execute(delete(ProductBarcode).where(ProductBarcode.product_id == product_id))
            await s.execute(delete(Product).where(Product.id == product_id))
            await s.execute(delete(Store).where(Store.id == store_id))
            await s.commit()


async def test_cancelling_paid_lines_above_the_cashier_s_limit_waits_for_approval(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The queue's "cancel lines and refund" on a paid order: 275.40 yuan of wine not on the
    shelf is above the cashier's 200 yuan, so it becomes a request (not a 403); the abnormal
    order stays open, offering no second cancel, until an admin approves it: then the lines
    are refunded (written off), as the admin, and the issue is settled."""
    store = await make_store(session)
    order = await _wine_order(session, store)
    line_id = await session.scalar(select(OrderLine.id).where(OrderLine.order_id == order.id))
    actor = Actor(kind="system", id=None, name="test", permissions=frozenset(), store_ids=None)
    issue = await lifecycle.open_issue(session, order, "stock_short", actor=actor)
    admin = await auth_headers(session, await make_user(session, role="admin", stores=[store]))
    ch = await auth_headers(session, await make_user(session, role="cashier", stores=[store]))

    url = f"/api/v1/orders/issues/{issue.id}/actions"
    r = await client.post(
        url, json={"action": "cancel_lines", "line_ids": [line_id], "note": "货架空"}, headers=ch
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open"
    request_id = r.json()["detail"]["refund_request_id"]
    assert "cancel_lines" not in r.json()["actions"]  # one request is enough
    r = await client.post(url, json={"action": "cancel_lines", "line_ids": [line_id]}, headers=ch)
    assert r.status_code == 409
    assert r.json()["details"][0]["reason"] == "pending_request"
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("paid", 0)
    assert "order.refund_approval.request" in await _audit(session, order)

    r = await client.get("/api/v1/orders/refund-requests", headers=admin)
    item = next(i for i in r.json()["items"] if i["id"] == request_id)
    assert (item["amount_fen"], item["can_decide"]) == (27_540, True)
    r = await client.post(
        f"/api/v1/orders/refund-requests/{request_id}/approve", json={}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["refund_id"] is not None
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=admin)).json()
    assert d["refunded_fen"] == 27_540
    assert [(i["kind"], i["status"]) for i in d["issues"]] == [("stock_short", "resolved")]
    refund = await session.get_one(Refund, r.json()["refund_id"])
    lines = (
        await session.scalars(select(RefundLine).where(RefundLine.refund_id == refund.id))
    ).all()
    assert [(ln.quantity, ln.disposition) for ln in lines] == [(2, "write_off")]
    assert "order.refund_approval.approve" in await _audit(session, order)


async def test_cancelling_paid_lines_within_the_limit_refunds_at_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    beer = await make_product(session, stores=[store], price_fen=500)
    order = await make_order(session, store, [(beer, 2)], status="paid", paid=True)
    actor = Actor(kind="system", id=None, name="test", permissions=frozenset(), store_ids=None)
    issue = await lifecycle.open_issue(session, order, "stock_short", actor=actor)
    line_id = await session.scalar(select(OrderLine.id).where(OrderLine.order_id == order.id))
    ch = await auth_headers(session, await make_user(session, role="cashier", stores=[store]))
    r = await client.post(
        f"/api/v1/orders/issues/{issue.id}/actions",
        json={"action": "cancel_lines", "line_ids": [line_id]},
        headers=ch,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    assert "refund_request_id" not in r.json()["detail"]
    await session.refresh(order)
    assert order.refunded_fen == 1_000
