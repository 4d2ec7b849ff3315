"""Abnormal orders: the queue with waiting times, the actions that fit each kind, and the
automatic re-query that runs before a person is bothered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from selfmart.db import make_sessionmaker
from selfmart.iam.actor import job_actor
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
    Refund,
    Store,
    StoreProduct,
)
from selfmart.orders import issues
from selfmart.payments import channels
from selfmart.payments.channels import (
    ChannelPayment,
    ChannelRefund,
    PaymentRequest,
    RefundRequest,
)
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product


class PlatformDouble:
    """A queryable channel whose platform answers what the test tells it to."""

    code = "testpay"
    queryable = True

    def __init__(self) -> None:
        self.answer = "pending"
        self.queries = 0

    async def collect(self, request: PaymentRequest) -> ChannelPayment:
        return ChannelPayment(status="pending", amount_fen=request.amount_fen, channel_txn_id="T1")

    async def query(self, channel_txn_id: str | None, order_no: str) -> ChannelPayment:
        self.queries += 1
        return ChannelPayment(
            status=self.answer,  # type: ignore[arg-type]
            amount_fen=0,
            channel_txn_id=channel_txn_id,
            paid_at=utcnow(),
        )

    async def refund(self, request: RefundRequest) -> ChannelRefund:
        return ChannelRefund(status="pending")


@pytest.fixture
def platform() -> Iterator[PlatformDouble]:
    double = PlatformDouble()
    channels.register(double)
    yield double
    channels._CHANNELS.pop(double.code, None)


async def _issue(session: AsyncSession, order: Order, kind: str, minutes_ago: int) -> OrderIssue:
    issue = OrderIssue(
        order_id=order.id,
        store_id=order.store_id,
        kind=kind,
        status="open",
        stage="person",
        detail={},
        opened_at=utcnow() - timedelta(minutes=minutes_ago),
    )
    session.add(issue)
    order.open_issues += 1
    await session.flush()
    return issue


async def test_the_queue_shows_longest_waiting_first_with_actions_scoped_to_stores(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    mine = await make_store(session)
    other = await make_store(session)
    p = await make_product(session, stores=[mine, other])
    o1 = await make_order(session, mine, [(p, 1)], status="payment_failed")
    o2 = await make_order(session, mine, [(p, 1)], status="paid", paid=True)
    o2.terminal_total_fen = p.price_fen - 50  # the terminal showed less: 50 fen to give back
    o3 = await make_order(session, other, [(p, 1)])
    newer = await _issue(session, o1, "payment_failed", 5)
    older = await _issue(session, o2, "price_mismatch", 90)
    await _issue(session, o3, "stock_short", 500)
    admin = await make_user(session, role="admin", stores=[mine])
    h = await auth_headers(session, admin)

    r = await client.get("/api/v1/orders/issues", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 2
    assert [i["id"] for i in body["items"]] == [older.id, newer.id]
    first = body["items"][0]
    assert 90 * 60 <= first["waiting_seconds"] < 91 * 60
    assert first["actions"] == ["refund_difference", "write_off", "close"]
    assert first["difference_fen"] == 50
    assert first["order_no"] == o2.order_no
    assert first["store_timezone"] == "Asia/Shanghai"
    r = await client.get("/api/v1/orders/issues", params={"kind": "payment_failed"}, headers=h)
    assert [i["id"] for i in r.json()["items"]] == [newer.id]
    # The abnormal filter of the order list finds the same orders.
    r = await client.get("/api/v1/orders", params={"abnormal": True}, headers=h)
    assert {i["id"] for i in r.json()["items"]} == {o1.id, o2.id}


async def test_the_queue_offers_only_the_actions_that_can_work_and_refusals_say_why(
    client: httpx.AsyncClient, session: AsyncSession, platform: PlatformDouble
) -> None:
    """Re-querying an order with no payment (or one through the manual channel), reminding a
    customer without a phone, refunding a difference there is not: the queue does not offer
    them, and acting anyway is a 409 whose detail names the reason by a stable code."""
    store = await make_store(session)
    p = await make_product(session, stores=[store], price_fen=900)
    bare = await make_order(session, store, [(p, 1)], status="payment_failed")
    bare_issue = await _issue(session, bare, "payment_failed", 9)
    queryable, queryable_issue = await _failed_on_testpay(session, store, p)
    queryable.customer_phone = "13800001234"
    queryable_issue.stage = "person"
    manual = await make_order(session, store, [(p, 1)], status="paid", paid=True)
    no_difference = await _issue(session, manual, "price_mismatch", 5)
    h = await auth_headers(session, await make_user(session, role="super_admin"))

    r = await client.get("/api/v1/orders/issues", headers=h)
    offered = {i["id"]: i["actions"] for i in r.json()["items"]}
    assert offered[bare_issue.id] == ["retry_payment", "close"]
    assert offered[queryable_issue.id] == ["requery_payment", "retry_payment", "remind", "close"]
    assert offered[no_difference.id] == ["write_off", "close"]
    d = (await client.get(f"/api/v1/orders/{bare.id}", headers=h)).json()
    assert d["issues"][0]["actions"] == ["retry_payment", "close"]

    async def act(issue_id: int, action: str) -> tuple[int, str, str]:
        r = await client.post(
            f"/api/v1/orders/issues/{issue_id}/actions", json={"action": action}, headers=h
        )
        body = r.json()
        return r.status_code, body["error"], body["details"][0]["reason"]

    assert await act(bare_issue.id, "requery_payment") == (409, "action_not_allowed", "no_payment")
    assert await act(bare_issue.id, "remind") == (409, "action_not_allowed", "no_customer_phone")
    assert await act(no_difference.id, "refund_difference") == (
        409,
        "action_not_allowed",
        "no_difference",
    )
    assert await act(no_difference.id, "retry_payment") == (
        409,
        "action_not_allowed",
        "not_for_kind",
    )
    manual_pay = await session.scalar(select(Payment).where(Payment.order_id == manual.id))
    assert manual_pay is not None
    await _issue(session, manual, "amount_mismatch", 2)
    r = await client.get("/api/v1/orders/issues", params={"kind": "amount_mismatch"}, headers=h)
    mismatch = r.json()["items"][0]
    assert "requery_payment" not in mismatch["actions"]  # manual: no platform to ask
    assert await act(mismatch["id"], "requery_payment") == (
        409,
        "action_not_allowed",
        "channel_not_queryable",
    )
    # The offered actions work.
    r = await client.post(
        f"/api/v1/orders/issues/{queryable_issue.id}/actions",
        json={"action": "requery_payment"},
        headers=h,
    )
    assert r.status_code == 200, r.text


async def test_close_needs_a_note_and_settles_the_issue(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await make_order(
        session, store, [(await make_product(session, stores=[store]), 1)], status="paid", paid=True
    )
    issue = await _issue(session, order, "price_mismatch", 3)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    url = f"/api/v1/orders/issues/{issue.id}/actions"

    r = await client.post(url, json={"action": "close"}, headers=h)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "note"
    r = await client.post(url, json={"action": "retry_payment"}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "action_not_allowed"

    r = await client.post(url, json={"action": "close", "note": "价签已更新"}, headers=h)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "resolved"
    assert done["resolution"] == "close"
    assert done["actions"] == []
    assert 180 <= done["waiting_seconds"] < 240
    await session.refresh(order)
    assert order.open_issues == 0
    r = await client.post(url, json={"action": "close", "note": "again"}, headers=h)
    assert r.status_code == 409
    actions = (
        await session.scalars(select(AuditLog.action).where(AuditLog.entity_id == str(order.id)))
    ).all()
    assert "order.issue.close" in actions


async def test_retry_payment_reopens_the_payment_window(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await make_order(
        session,
        store,
        [(await make_product(session, stores=[store]), 1)],
        status="payment_failed",
        created_at=utcnow() - timedelta(hours=2),
    )
    issue = await _issue(session, order, "payment_failed", 100)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/issues/{issue.id}/actions", json={"action": "retry_payment"}, headers=h
    )
    assert r.status_code == 200, r.text
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert d["status"] == "awaiting_payment"
    assert d["open_issues"] == 0
    await session.refresh(order)
    assert order.expires_at is not None
    assert order.expires_at > utcnow()


async def test_refund_difference_gives_back_an_overpayment_without_moving_the_order(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    order = await make_order(
        session, store, [(await make_product(session, stores=[store], price_fen=500), 1)]
    )
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{order.id}/payments", json={"amount_fen": 700}, headers=h
    )
    assert r.status_code == 201
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert d["status"] == "paid"
    issue = d["issues"][0]
    assert issue["kind"] == "amount_mismatch"
    assert issue["detail"]["paid_fen"] == 700

    cashier_without_refund = await make_user(session, role="super_admin")
    r = await client.post(
        f"/api/v1/orders/issues/{issue['id']}/actions",
        json={"action": "refund_difference", "note": "多收 2 元", "reference": "CASH-1"},
        headers=await auth_headers(session, cashier_without_refund),
    )
    assert r.status_code == 200, r.text
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert d["status"] == "paid"
    assert d["refunded_fen"] == 200
    assert [(x["amount_fen"], x["status"]) for x in d["refunds"]] == [(200, "succeeded")]
    assert d["issues"][0]["status"] == "resolved"


async def _failed_on_testpay(
    session: AsyncSession, store: Store, product: Product
) -> tuple[Order, OrderIssue]:
    """An order whose testpay payment failed, its issue due for the automatic re-query."""
    order = await make_order(session, store, [(product, 1)], status="payment_failed")
    order.payment_method = "testpay"
    session.add(
        Payment(
            order_id=order.id,
            store_id=store.id,
            channel="testpay",
            status="failed",
            amount_fen=product.price_fen,
            channel_txn_id=f"T-{order.id}",
            created_at=utcnow(),
            actor_type="terminal",
        )
    )
    issue = await _issue(session, order, "payment_failed", 1)
    issue.stage = "auto"
    issue.next_auto_at = utcnow() - timedelta(seconds=1)
    await session.flush()
    return order, issue


async def test_automatic_requery_settles_a_paid_order_or_hands_it_to_a_person(
    session: AsyncSession, platform: PlatformDouble
) -> None:
    store = await make_store(session)
    p = await make_product(session, stores=[store], price_fen=900)
    actor = job_actor("test")

    paid_later, issue_a = await _failed_on_testpay(session, store, p)
    platform.answer = "succeeded"
    assert await issues.run_automatic_rules(session, actor=actor) == 1
    await session.refresh(paid_later)
    await session.refresh(issue_a)
    assert paid_later.status == "paid"
    assert issue_a.status == "resolved"

    never, issue_b = await _failed_on_testpay(session, store, p)
    platform.answer = "failed"
    for _ in range(issues.AUTO_ATTEMPTS):
        await session.execute(
            update(OrderIssue)
            .where(OrderIssue.id == issue_b.id)
            .values(next_auto_at=utcnow() - timedelta(seconds=1))
        )
        await issues.run_automatic_rules(session, actor=actor)
    await session.refresh(issue_b)
    assert issue_b.status == "open"
    assert issue_b.stage == "person"  # the platform had nothing: a person takes over
    assert issue_b.auto_attempts == issues.AUTO_ATTEMPTS
    await session.refresh(never)
    assert never.status == "payment_failed"
    assert (
        await session.scalar(select(func.count(Refund.id)).where(Refund.order_id == never.id)) == 0
    )


async def test_a_refund_the_channel_refuses_returns_the_order_and_raises_an_issue(
    client: httpx.AsyncClient, session: AsyncSession, platform: PlatformDouble
) -> None:
    store = await make_store(session)
    p = await make_product(session, stores=[store], price_fen=900)
    order = await make_order(session, store, [(p, 2)], status="completed", paid=True)
    payment = await session.scalar(select(Payment).where(Payment.order_id == order.id))
    assert payment is not None
    payment.channel = "testpay"
    await session.flush()

    async def refused(request: RefundRequest) -> ChannelRefund:
        return ChannelRefund(status="failed", failure_reason="商户余额不足")

    platform.refund = refused  # type: ignore[method-assign]
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds", json={"full": True, "reason": "顾客退货"}, headers=h
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "failed"
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    assert d["status"] == "completed"  # back where it stood
    assert d["refunded_fen"] == 0
    assert [ln["refunded_qty"] for ln in d["lines"]] == [0]  # the units are refundable again
    moves = [(e["from_status"], e["to_status"]) for e in d["timeline"] if e["kind"] == "transition"]
    assert moves[-2:] == [("completed", "refund_requested"), ("refund_requested", "completed")]
    assert [(i["kind"], i["detail"]["reason"]) for i in d["issues"]] == [
        ("refund_failed", "商户余额不足")
    ]


async def test_the_automatic_rules_leave_an_order_someone_is_working_on(
    engine: AsyncEngine, backend: str, platform: PlatformDouble
) -> None:
    """The re-query job takes the order as a person's action does (its row, first). While a
    person (or another job runner) holds it, the job leaves that issue for its next run
    instead of querying and settling underneath them."""
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections: PostgreSQL only")
    factory = make_sessionmaker(engine)
    async with factory() as s:
        store = await make_store(s)
        p = await make_product(s, stores=[store], price_fen=900)
        order, issue = await _failed_on_testpay(s, store, p)
        await s.commit()
        store_id, product_id, order_id, issue_id = store.id, p.id, order.id, issue.id
    platform.answer = "succeeded"
    actor = job_actor("test")
    try:
        async with factory() as person:
            await person.execute(select(Order).where(Order.id == order_id).with_for_update())
            async with factory() as job:
                # Bounded: were the job to wait for the person's lock, this fails, not hangs.
                worked = await asyncio.wait_for(issues.run_automatic_rules(job, actor=actor), 10)
                assert worked == 0
                await job.commit()
            assert platform.queries == 0
            await person.rollback()
        async with factory() as job:
            assert await issues.run_automatic_rules(job, actor=actor) == 1
            await job.commit()
        async with factory() as s:
            settled = await s.get_one(OrderIssue, issue_id)
            paid = await s.get_one(Order, order_id)
        assert platform.queries == 1
        assert (settled.status, paid.status) == ("resolved", "paid")
    finally:
        async with factory() as s:
            for model in (OrderEvent, OrderIssue, Payment, AuditLog):
                await s.execute(delete(model).where(model.store_id == store_id))
            await s.execute(delete(OrderLine).where(OrderLine.order_id == order_id))
            await s.execute(delete(Order).where(Order.id == order_id))
            await s.execute(delete(StoreProduct).where(StoreProduct.store_id == store_id))
            await s.execute(delete(ProductBarcode).where(ProductBarcode.product_id == product_id))
            await s.execute(delete(Product).where(Product.id == product_id))
            await s.execute(delete(Store).where(Store.id == store_id))
            await s.commit()
