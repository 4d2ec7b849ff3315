"""Real concurrent connections on PostgreSQL: fifty copies of one order make one order, and
an interrupted batch sent again lands every order once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.app import create_app
from selfmart.db import make_sessionmaker
from selfmart.iam.actor import SYSTEM
from selfmart.inventory import service as inventory
from selfmart.kit.time import utcnow
from selfmart.models import (
    AuditLog,
    Order,
    OrderEvent,
    OrderIssue,
    OrderLine,
    Payment,
    Product,
    ProductBarcode,
    StockLevel,
    StockMovement,
    Store,
    StoreProduct,
    Terminal,
    TerminalKey,
    TerminalNonce,
)
from tests.orders.builders import make_product
from tests.support import settings_for
from tests.terminals.builders import Credentials, make_active_terminal

pytestmark = pytest.mark.postgres_only


@dataclass
class World:
    store_id: int
    product_id: int
    barcode: str
    creds: Credentials
    client: httpx.AsyncClient
    engine: AsyncEngine


@pytest.fixture
async def world(engine: AsyncEngine, db_url: str, backend: str) -> AsyncIterator[World]:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections: PostgreSQL only")
    factory = make_sessionmaker(engine)
    code = f"C{uuid.uuid4().hex[:6].upper()}"
    barcode = f"69{uuid.uuid4().int % 10**11:011d}"
    async with factory() as s:
        store = Store(code=code, name="并发测试店", city="上海")
        s.add(store)
        await s.flush()
        product = await make_product(s, stores=[store], barcode=barcode, price_fen=350)
        await inventory.adjust(
            s,
            store_id=store.id,
            product_id=product.id,
            actor=SYSTEM,
            reason="test",
            set_to=1000,
            audit_action=None,
        )
        creds = await make_active_terminal(s, store)
        await s.commit()
        store_id, product_id = store.id, product.id
    app = create_app(settings_for(db_url), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield World(store_id, product_id, barcode, creds, client, engine)
    async with factory() as s:
        order_ids = select(Order.id).where(Order.store_id == store_id)
        await s.execute(delete(OrderEvent).where(OrderEvent.order_id.in_(order_ids)))
        await s.execute(delete(OrderIssue).where(OrderIssue.order_id.in_(order_ids)))
        await s.execute(delete(OrderLine).where(OrderLine.order_id.in_(order_ids)))
        await s.execute(delete(Payment).where(Payment.store_id == store_id))
        await s.execute(delete(AuditLog).where(AuditLog.store_id == store_id))
        await s.execute(delete(Order).where(Order.store_id == store_id))
        await s.execute(delete(StockMovement).where(StockMovement.store_id == store_id))
        await s.execute(delete(StockLevel).where(StockLevel.store_id == store_id))
        terminal_ids = select(Terminal.id).where(Terminal.store_id == store_id)
        await s.execute(delete(TerminalNonce).where(TerminalNonce.terminal_id.in_(terminal_ids)))
        await s.execute(delete(TerminalKey).where(TerminalKey.terminal_id.in_(terminal_ids)))
        await s.execute(delete(Terminal).where(Terminal.store_id == store_id))
        await s.execute(delete(StoreProduct).where(StoreProduct.store_id == store_id))
        await s.execute(delete(ProductBarcode).where(ProductBarcode.product_id == product_id))
        await s.execute(delete(Product).where(Product.id == product_id))
        await s.execute(delete(Store).where(Store.id == store_id))
        await s.commit()


def _order(client_id: str, barcode: str, qty: int = 1) -> dict[str, Any]:
    return {
        "client_order_id": client_id,
        "purchased_at": (utcnow() - timedelta(minutes=1)).isoformat(),
        "lines": [{"barcode": barcode, "quantity": qty}],
    }


async def _post(w: World, target: str, payload: Any) -> httpx.Response:
    body, headers = w.creds.signed_json("POST", target, payload)
    return await w.client.post(target, content=body, headers=headers)


async def test_fifty_concurrent_copies_make_exactly_one_order(world: World) -> None:
    payload = _order("RACE-1", world.barcode, qty=2)
    responses = await asyncio.gather(
        *(_post(world, "/api/terminal/v1/orders", payload) for _ in range(50))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 49 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["order_no"] for r in responses}) == 1
    factory = make_sessionmaker(world.engine)
    async with factory() as s:
        n = await s.scalar(
            select(func.count()).select_from(Order).where(Order.store_id == world.store_id)
        )
        assert n == 1
        assert await inventory.balances(s, world.store_id, [world.product_id]) == {
            world.product_id: 998
        }
        sales = await s.scalar(
            select(func.count())
            .select_from(StockMovement)
            .where(StockMovement.store_id == world.store_id, StockMovement.kind == "sale")
        )
        assert sales == 1


async def _upload(w: World, orders: list[dict[str, Any]]) -> httpx.Response:
    """A terminal's upload: sent again while the server says 503 (busy; nothing written)."""
    for _ in range(20):
        r = await _post(w, "/api/terminal/v1/orders/batch", {"orders": orders})
        if r.status_code != 503:
            return r
        assert r.json()["error"] == "retry_later"
    raise AssertionError("still busy after 20 tries")


async def test_a_batch_and_its_resends_racing_land_every_order_once(world: World) -> None:
    orders = [_order(f"OFF-{i}", world.barcode) for i in range(20)]
    responses = await asyncio.gather(
        _upload(world, orders[:10]),
        _upload(world, orders),
        _upload(world, orders[5:]),
        _post(world, "/api/terminal/v1/orders", orders[12]),
    )
    for r in responses:
        assert r.status_code in (200, 201, 503), r.text
    created = sum(r.json()["created"] for r in responses[:3])
    single = responses[3]
    created += 1 if single.status_code == 201 else 0
    assert created == 20
    factory = make_sessionmaker(world.engine)
    async with factory() as s:
        n = await s.scalar(
            select(func.count()).select_from(Order).where(Order.store_id == world.store_id)
        )
        assert n == 20
        assert await inventory.balances(s, world.store_id, [world.product_id]) == {
            world.product_id: 980
        }


async def test_a_payment_racing_the_close_job_leaves_one_consistent_outcome(
    world: World,
) -> None:
    from sqlalchemy import update

    from selfmart.errors import IllegalTransition
    from selfmart.iam.actor import Actor, job_actor
    from selfmart.orders import service
    from selfmart.orders.schemas import ManualPaymentBody

    r = await _post(world, "/api/terminal/v1/orders", _order("RACE-PAY", world.barcode))
    order_id = r.json()["order_id"]
    factory = make_sessionmaker(world.engine)
    async with factory() as s:
        await s.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        await s.commit()
    cashier = Actor(kind="user", id=None, name="cashier", permissions=frozenset(), store_ids=None)

    async def pay() -> str:
        async with factory() as s:
            order = await service.get_for_actor(s, order_id, cashier, for_update=True)
            try:
                await service.record_manual_payment(s, order, ManualPaymentBody(), actor=cashier)
            except IllegalTransition:
                await s.rollback()
                return "refused"
            await s.commit()
            return "paid"

    async def close() -> int:
        async with factory() as s:
            closed = await service.close_expired(s, actor=job_actor("test"))
            await s.commit()
            return len(closed)

    paid, closed = await asyncio.gather(pay(), close())
    async with factory() as s:
        order = await s.get_one(Order, order_id)
        payments = await s.scalar(
            select(func.count()).select_from(Payment).where(Payment.order_id == order_id)
        )
        stock = await inventory.balances(s, world.store_id, [world.product_id])
    if paid == "paid":
        assert closed == 0
        assert order.status == "paid"
        assert payments == 1
        assert stock == {world.product_id: 999}
    else:
        assert closed == 1
        assert order.status == "closed"
        assert payments == 0
        assert stock == {world.product_id: 1000}  # the goods went back


async def test_twenty_concurrent_copies_of_a_payment_failure_are_recorded_once(
    world: World,
) -> None:
    created = await _post(world, "/api/terminal/v1/orders", _order("PF-1", world.barcode))
    assert created.status_code == 201
    order_no = created.json()["order_no"]
    target = f"/api/terminal/v1/orders/{order_no}/payment-failures"
    report = {"attempt_id": "A-1", "method": "card", "amount_fen": 350, "reason": "declined"}
    responses = await asyncio.gather(*(_post(world, target, report) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code >= 300]
    assert {r.json()["status"] for r in responses} == {"payment_failed"}
    assert len({r.json()["issue_id"] for r in responses}) == 1
    factory = make_sessionmaker(world.engine)
    async with factory() as s:
        attempts = await s.scalar(
            select(func.count())
            .select_from(OrderEvent)
            .where(
                OrderEvent.store_id == world.store_id,
                OrderEvent.reason == "terminal_payment_failed",
            )
        )
        assert attempts == 1
        issues = await s.scalar(
            select(func.count())
            .select_from(OrderIssue)
            .where(OrderIssue.store_id == world.store_id, OrderIssue.kind == "payment_failed")
        )
        assert issues == 1


async def test_people_refunding_the_same_difference_at_once_refund_it_once(
    world: World,
) -> None:
    """Six clicks on "refund the difference" of one price mismatch, at the same moment: one
    refund goes out, the others find the abnormal order settled."""
    from selfmart.iam.actor import Actor
    from selfmart.models import Refund
    from selfmart.orders import issues, service
    from selfmart.orders.exceptions import ActionNotAllowed
    from selfmart.orders.schemas import IssueAction, ManualPaymentBody

    shown = _order("RACE-DIFF", world.barcode)
    shown["lines"][0]["unit_price_fen"] = 250  # the shelf said 2.50; the store's price is 3.50
    shown["total_fen"] = 250
    r = await _post(world, "/api/terminal/v1/orders", shown)
    assert r.json()["price_mismatch"] is True
    order_id = r.json()["order_id"]
    admin = Actor(kind="user", id=None, name="admin", permissions=frozenset(), store_ids=None)
    factory = make_sessionmaker(world.engine)
    async with factory() as s:
        order = await service.get_for_actor(s, order_id, admin, for_update=True)
        await service.record_manual_payment(s, order, ManualPaymentBody(), actor=admin)
        await s.commit()
        issue_id = await s.scalar(
            select(OrderIssue.id).where(
                OrderIssue.order_id == order_id, OrderIssue.kind == "price_mismatch"
            )
        )
    assert issue_id is not None

    async def refund() -> str:
        async with factory() as s:
            issue = await s.get_one(OrderIssue, issue_id)
            try:
                await issues.act(
                    s, issue, IssueAction(action="refund_difference", note="退差价"), actor=admin
                )
            except ActionNotAllowed:
                await s.rollback()
                return "refused"
            await s.commit()
            return "refunded"

    try:
        outcomes = await asyncio.gather(*(refund() for _ in range(6)))
        async with factory() as s:
            order = await s.get_one(Order, order_id)
            refunds = await s.scalar(
                select(func.count()).select_from(Refund).where(Refund.order_id == order_id)
            )
        assert sorted(outcomes) == ["refunded"] + ["refused"] * 5
        assert refunds == 1
        assert order.refunded_fen == 100
    finally:
        async with factory() as s:
            await s.execute(delete(Refund).where(Refund.order_id == order_id))
            await s.commit()
