"""Faults between us and the platform: a platform that times out or answers 500 (WeChat Pay,
Alipay and UnionPay sandboxes), a refund larger than what is left, and a callback racing the
close job (real connections on PostgreSQL). Each is recorded and answered; nothing is charged
or paid twice, nothing is lost. The refund and race tests run on WeChat Pay (a refund whose
answer was lost, on each platform: test_jobs.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.db import make_sessionmaker
from selfmart.iam.actor import job_actor
from selfmart.kit.time import utcnow
from selfmart.models import Order, OrderEvent, Payment, Refund, Store
from selfmart.orders import service as orders
from selfmart.payments import accounts
from tests.builders import auth_headers, make_user
from tests.orders.builders import make_order, make_product
from tests.payments.platforms import (
    CHANNELS,
    PAY_CALL,
    calls,
    channel_setup,
    next_call,
    present,
    taken_fen,
)
from tests.payments.test_callbacks import (
    World,
    _callback_for_qr_payment,
    _deliver,
    world,
    world_order,
)
from tests.payments.test_terminal_pay import pay, setup, state
from tests.payments.wechatpay.support import Sandbox
from tests.terminals.builders import make_active_terminal

__all__ = ["world"]  # the PostgreSQL fixture, shared with the callback tests


@pytest.fixture
async def impatient(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Platform calls give up after one second (the sandbox's slow answers take three)."""
    async with httpx.AsyncClient(timeout=1.0) as http:
        monkeypatch.setattr(accounts, "platform_http", http)
        yield


async def _quiet(session: AsyncSession, payment_id: int, *, expired: bool = False) -> None:
    """The attempt was last asked about a minute ago (and, `expired`, is past its deadline)."""
    past = utcnow() - timedelta(minutes=1)
    values: dict[str, object] = {"updated_at": past}
    if expired:
        values["expires_at"] = past
    await session.execute(update(Payment).where(Payment.id == payment_id).values(**values))


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_lost_answer_is_found_by_asking_and_charges_once(
    channel: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: Sandbox,
    impatient: None,
) -> None:
    """The platform takes three seconds to answer the payment (we wait one). Until it has
    taken it, asking finds no such payment, which is not yet a failure: the terminal's long
    poll asks again until the payment is there, paid; it was sent once."""
    _, creds, order = await channel_setup(session, wechat, channel)
    await next_call(wechat, channel, "timeout", PAY_CALL[channel], seconds=3)
    r = await pay(client, creds, order.order_no, **present(wechat, channel, "success"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "paying"  # unknown: recorded, to be asked about
    assert body["failure_code"] == "timeout"
    await session.refresh(order)
    assert order.status == "awaiting_payment"

    await _quiet(session, body["payment_id"])
    r = await state(client, creds, order.order_no, wait=15)
    assert r.json()["attempt"]["state"] == "paid", r.text
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
    assert await calls(wechat, channel, PAY_CALL[channel]) == 1
    assert await taken_fen(wechat, channel, [body["out_trade_no"]]) == 700


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_platform_500_is_unknown_then_settled_by_the_query(
    channel: str, client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await channel_setup(session, wechat, channel)
    await next_call(wechat, channel, "error", PAY_CALL[channel])
    r = await pay(client, creds, order.order_no, **present(wechat, channel, "success"))
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "paying"
    assert r.json()["failure_code"]
    first = r.json()["out_trade_no"]
    payment = await session.get(Payment, r.json()["payment_id"])
    assert payment is not None
    assert payment.status == "pending"
    # The platform never took it: asking says so and the order can be paid again.
    await _quiet(session, payment.id)
    r = await state(client, creds, order.order_no)
    if channel == "alipay":
        # Alipay's TRADE_NOT_EXIST is no failure of a bar-code payment (it may still arrive):
        # past the attempt's deadline it is cancelled (alipay.trade.cancel), as Alipay says.
        assert r.json()["attempt"]["state"] == "paying", r.text
        await _quiet(session, payment.id, expired=True)
        r = await state(client, creds, order.order_no)
        assert r.json()["attempt"]["state"] == "closed", r.text
        assert await calls(wechat, channel, "alipay.trade.cancel") == 1
    else:
        assert r.json()["attempt"]["state"] == "failed", r.text
    body = present(wechat, channel, "success")
    r = await pay(client, creds, order.order_no, attempt_id="A2", **body)
    assert r.json()["state"] == "paid", r.text
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
    assert await taken_fen(wechat, channel, [first, r.json()["out_trade_no"]]) == 700


async def test_a_refund_larger_than_what_is_left_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["success"])
    assert r.json()["state"] == "paid"
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    line = (await orders.detail(session, order, actor=job_actor("t")))["lines"][0]
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds",
        json={"lines": [{"line_id": line.id, "quantity": 1}], "reason": "一瓶坏了"},
        headers=headers,
    )
    assert r.status_code in (200, 201), r.text
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds",
        json={"lines": [{"line_id": line.id, "quantity": 2}], "reason": "再退两瓶"},
        headers=headers,
    )
    assert r.status_code in (409, 422), r.text
    refunds = (await session.scalars(select(Refund).where(Refund.order_id == order.id))).all()
    assert [(x.amount_fen, x.out_refund_no) for x in refunds] == [(350, f"{order.order_no}P01R01")]
    received = (await asyncio.to_thread(wechat.control, "GET", "/received")).json()
    assert sum("/v3/refund/domestic/refunds" in json.dumps(q) for q in received["requests"]) == 1


@pytest.mark.postgres_only
async def test_a_callback_racing_the_close_job(world: World, wechat: Sandbox) -> None:
    """The close job and the payment's callback at once: either the order is paid, or it is
    closed and the money goes back whole; never paid and closed, never kept silently."""
    factory = make_sessionmaker(world.engine)
    creds, order = await world_order(world)
    order_id = order.id
    started, call = await _callback_for_qr_payment(world.client, wechat, creds, order)
    async with factory() as s:
        await s.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await s.commit()

    async def close_job() -> list[int]:
        async with factory() as s:
            closed = await orders.close_expired(s, actor=job_actor("orders.close_unpaid"))
            await s.commit()
            return closed

    answer, _closed = await asyncio.gather(
        _deliver(world.client, world.account_id, call), close_job()
    )
    assert answer.status_code in (200, 204), answer.text
    async with factory() as s:
        placed = await s.get(Order, order_id)
        assert placed is not None
        payment = await s.get(Payment, started["payment_id"])
        assert payment is not None
        assert payment.status == "succeeded"
        moves = (
            await s.scalars(
                select(OrderEvent.to_status).where(
                    OrderEvent.order_id == order_id, OrderEvent.kind == "transition"
                )
            )
        ).all()
        refunds = (await s.scalars(select(Refund).where(Refund.order_id == order_id))).all()
        if placed.status == "paid":
            assert placed.paid_fen == 700
            assert "closed" not in moves
            assert refunds == []
        else:
            assert placed.status == "closed"
            assert "paid" not in moves
            assert [(r.amount_fen, r.payment_id) for r in refunds] == [(700, payment.id)]


@pytest.mark.postgres_only
async def test_two_refunds_racing_reach_the_platform_once(world: World, wechat: Sandbox) -> None:
    """Two people refund the same paid order at once (real connections): one refund goes to
    the platform, the other is refused; the money goes back once."""
    factory = make_sessionmaker(world.engine)
    async with factory() as s:
        store = await s.get(Store, world.store_id)
        assert store is not None
        cola = await make_product(s, stores=[store], price_fen=350)
        creds = await make_active_terminal(s, store)
        order = await make_order(s, store, [(cola, 2)], terminal=creds.terminal)
        user = await make_user(s, role="super_admin")
        headers = await auth_headers(s, user)
        await s.commit()
        order_id, order_no = order.id, order.order_no
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(world.client, creds, order_no, auth_code=codes["success"])
    assert r.json()["state"] == "paid", r.text

    async def refund() -> httpx.Response:
        return await world.client.post(
            f"/api/v1/orders/{order_id}/refunds",
            json={"full": True, "reason": "退货"},
            headers=headers,
        )

    answers = await asyncio.gather(refund(), refund())
    codes_seen = sorted(a.status_code for a in answers)
    assert codes_seen[0] in (200, 201), [a.text for a in answers]
    assert codes_seen[1] == 409, [a.text for a in answers]
    async with factory() as s:
        refunds = (await s.scalars(select(Refund).where(Refund.order_id == order_id))).all()
        assert [(x.amount_fen, x.out_refund_no) for x in refunds] == [(700, f"{order_no}P01R01")]
    received = (await asyncio.to_thread(wechat.control, "GET", "/received")).json()
    assert sum("/v3/refund/domestic/refunds" in json.dumps(q) for q in received["requests"]) == 1
