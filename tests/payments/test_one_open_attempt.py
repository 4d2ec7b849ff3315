"""One open trade per order, as at a real cash desk (WeChat Pay sandbox): a second payment code
while the first is being paid is refused (`payment_in_progress`, naming the attempt in
flight); a QR or phone-page attempt the customer turned away from is closed on the platform
before the new one starts, and if it turns out paid the order is paid once, with no second
trade."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from selfmart.db import make_sessionmaker
from selfmart.models import AuditLog, Order, OrderIssue, Payment
from selfmart.orders import receipts
from tests.payments.test_callbacks import open_world, world_order
from tests.payments.test_terminal_pay import pay, setup, state
from tests.payments.wechatpay.support import Sandbox
from tests.terminals.builders import Credentials


def _sent(wechat: Sandbox, fragment: str) -> list[str]:
    received = wechat.control("GET", "/received").json()["requests"]
    return [q["url"] for q in received if fragment in json.dumps(q)]


async def _qr_shown(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> tuple[Credentials, Order, dict[str, Any]]:
    """An order of 700 fen whose terminal shows a QR (attempt Q1)."""
    _, creds, order = await setup(session, wechat)
    r = await pay(client, creds, order.order_no, mode="qr", attempt_id="Q1")
    assert r.json()["state"] == "waiting", r.text
    return creds, order, r.json()


async def test_two_payment_codes_racing_charge_once(
    engine: AsyncEngine, db_url: str, wechat: Sandbox
) -> None:
    """Real concurrent connections on both backends: the order's lock serialises them."""
    async with open_world(engine, db_url, wechat) as world:
        factory = make_sessionmaker(world.engine)
        creds, order = await world_order(world)
        order_id, order_no = order.id, order.order_no
        code = wechat.credentials()["test_auth_codes"]["user_paying"]

        answers = await asyncio.gather(
            pay(world.client, creds, order_no, attempt_id="C1", auth_code=code),
            pay(world.client, creds, order_no, attempt_id="C2", auth_code=code),
        )
        by_status = {a.status_code: a for a in answers}
        assert sorted(by_status) == [201, 409], [a.text for a in answers]
        started = by_status[201].json()
        assert started["state"] == "paying"
        refused = by_status[409].json()
        assert refused["error"] == "payment_in_progress"
        [detail] = refused["details"]
        assert detail["field"] == "attempt_id"
        assert started["attempt_id"] in detail["message"]
        assert started["attempt_id"] in refused["message"]
        assert len(await asyncio.to_thread(_sent, wechat, "codepay")) == 1

        # The terminal reads the attempt in flight until the customer has paid.
        out_no = started["out_trade_no"]
        await asyncio.to_thread(wechat.control, "POST", f"/payments/{out_no}/approve")
        r = await state(world.client, creds, order_no, wait=10)
        assert r.json()["attempt"]["state"] == "paid", r.text
        async with factory() as s:
            placed = await s.get(Order, order_id)
            assert placed is not None
            assert (placed.status, placed.paid_fen) == ("paid", 700)
            rows = (
                await s.scalars(select(Payment.attempt_id).where(Payment.order_id == order_id))
            ).all()
            assert rows == [started["attempt_id"]]
            issues = await s.scalar(
                select(func.count()).select_from(OrderIssue).where(OrderIssue.order_id == order_id)
            )
            assert issues == 0


async def test_a_qr_is_closed_on_the_platform_before_the_code_pays(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    creds, order, qr = await _qr_shown(client, session, wechat)
    codes = wechat.credentials()["test_auth_codes"]

    r = await pay(client, creds, order.order_no, attempt_id="C1", auth_code=codes["success"])
    assert r.status_code == 201, r.text
    assert (r.json()["state"], r.json()["order_status"]) == ("paid", "paid")
    closes = await asyncio.to_thread(_sent, wechat, "/close")
    assert closes == [f"/v3/pay/transactions/out-trade-no/{qr['out_trade_no']}/close"]
    # Closed there: the customer can no longer pay the QR.
    approve = await asyncio.to_thread(
        wechat.control, "POST", f"/payments/{qr['out_trade_no']}/approve"
    )
    assert approve.status_code >= 400, approve.text

    closed = await session.get(Payment, qr["payment_id"], populate_existing=True)
    assert closed is not None
    assert closed.status == "closed"
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
    actions = (
        await session.scalars(select(AuditLog.action).where(AuditLog.entity_id == str(order.id)))
    ).all()
    assert "order.payment_superseded" in actions


async def test_a_qr_paid_just_before_the_code_pays_the_order_once(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    creds, order, qr = await _qr_shown(client, session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    # The customer pays the QR; its callback has not arrived when the code is scanned.
    await asyncio.to_thread(wechat.control, "POST", f"/payments/{qr['out_trade_no']}/approve")

    r = await pay(client, creds, order.order_no, attempt_id="C1", auth_code=codes["success"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "already_paid"
    assert (body["state"], body["order_status"]) == ("paid", "paid")
    assert body["attempt_id"] == "Q1"
    assert await asyncio.to_thread(_sent, wechat, "codepay") == []
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
    attempts = (
        await session.scalars(select(Payment.attempt_id).where(Payment.order_id == order.id))
    ).all()
    assert attempts == ["Q1"]
    assert (
        await session.scalar(select(OrderIssue.id).where(OrderIssue.order_id == order.id)) is None
    )


async def test_an_attempt_answered_already_paid_sent_again_is_answered_the_same(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """The terminal lost the `already_paid` answer and sends the same attempt again: the same
    answer (idempotent on the attempt id), audited as a resend; nothing started or charged.
    Another channel or mode under that id is a conflict; a new attempt id, a paid order."""
    creds, order, qr = await _qr_shown(client, session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    await asyncio.to_thread(wechat.control, "POST", f"/payments/{qr['out_trade_no']}/approve")
    first = await pay(client, creds, order.order_no, attempt_id="C1", auth_code=codes["success"])
    assert (first.status_code, first.json()["outcome"]) == (200, "already_paid"), first.text

    again = await pay(client, creds, order.order_no, attempt_id="C1", auth_code=codes["success"])
    assert again.status_code == 200, again.text
    assert again.json() == first.json()

    other_mode = await pay(client, creds, order.order_no, attempt_id="C1", mode="qr")
    assert other_mode.status_code == 409, other_mode.text
    assert other_mode.json()["error"] == "idempotency_conflict"
    assert other_mode.json()["details"][0]["field"] == "attempt_id"
    new_id = await pay(client, creds, order.order_no, attempt_id="C2", auth_code=codes["success"])
    assert new_id.status_code == 409, new_id.text
    assert new_id.json()["error"] == "illegal_transition"

    assert await asyncio.to_thread(_sent, wechat, "codepay") == []
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
    attempts = (
        await session.scalars(select(Payment.attempt_id).where(Payment.order_id == order.id))
    ).all()
    assert attempts == ["Q1"]
    notes = (
        await session.scalars(
            select(AuditLog.note).where(
                AuditLog.entity_id == str(order.id), AuditLog.action == "order.payment_resent"
            )
        )
    ).all()
    assert notes == ["attempt C1 sent again; answered already_paid again"]


async def test_the_phone_page_waits_for_a_payment_code_in_flight(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, attempt_id="C1", auth_code=codes["user_paying"])
    assert r.json()["state"] == "paying", r.text
    token = receipts.make_token(order.id)
    r = await client.post(
        f"/api/v1/public/orders/receipt/{token}/payments",
        json={"attempt_id": "phone-0001", "channel": "wechat"},
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "payment_in_progress"
    assert "C1" in r.json()["details"][0]["message"]
