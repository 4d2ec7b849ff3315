"""A double payment: the second successful payment of an order, on the same channel or another
(a WeChat Pay or Alipay QR paid just as it was given up, then a payment code or a bank card),
becomes an amount_mismatch issue offering the extra back, and the abnormal-order queue's one
click (`refund_difference`) sends that refund to the platform of the payment it goes back
through, settles the issue and is audited; a store set to refund double payments gets the extra
back at once. UnionPay has no QR, so its card is always the second payment here."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.models import AuditLog, Order, OrderIssue, Payment, Refund
from selfmart.payments import tasks
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product
from tests.payments.platforms import (
    callbacks_of,
    channel_setup,
    decide,
    deliver,
    offer,
    present,
    refunds_sent,
    the_account,
)
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Sandbox
from tests.support import settings_for
from tests.terminals.builders import Credentials, make_active_terminal

#: (the channel of the QR paid as it was given up, the channel of the payment that followed)
PAIRS = [("wechat", "wechat"), ("wechat", "card"), ("alipay", "wechat"), ("alipay", "alipay")]


async def pay_twice(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: Sandbox,
    creds: Credentials,
    order: Order,
    pair: tuple[str, str] = ("wechat", "wechat"),
) -> dict[str, Any]:
    """Pays `order` twice at the sandboxes (a QR on pair[0], then the customer's code or card
    on pair[1]); returns the terminal's answer to the second payment."""
    first, second = pair
    await offer(session, wechat, second)
    r = await pay(client, creds, order.order_no, channel=first, mode="qr", attempt_id="Q1")
    qr = r.json()
    # The customer pays the QR just as it is closed for the payment code they scan next: we
    # heard "closed", the money went through anyway (its callback comes later).
    await decide(wechat, first, qr["out_trade_no"])
    await session.execute(
        update(Payment).where(Payment.id == qr["payment_id"]).values(status="closed")
    )
    r = await pay(
        client, creds, order.order_no, attempt_id="C1", **present(wechat, second, "success")
    )
    assert r.json()["state"] == "paid", r.text
    code: dict[str, Any] = r.json()
    account = await the_account(session, order, first)
    for call in await callbacks_of(wechat, first, qr["out_trade_no"]):
        r = await deliver(client, first, account.id, call)
        assert r.status_code in (200, 204), r.text
    await session.refresh(order)
    return code


async def offered_back(
    client: httpx.AsyncClient, session: AsyncSession, order: Order
) -> tuple[dict[str, Any], dict[str, str]]:
    """The order paid twice kept both payments and waits in the abnormal-order queue with a
    one-click refund of the extra; returns that issue and an admin's headers."""
    assert (order.status, order.paid_fen, order.refunded_fen) == ("paid", 1400, 0)
    assert await session.scalar(select(Refund.id).where(Refund.order_id == order.id)) is None
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.get(
        "/api/v1/orders/issues", params={"kind": "amount_mismatch"}, headers=headers
    )
    assert r.status_code == 200, r.text
    [issue] = [i for i in r.json()["items"] if i["order_id"] == order.id]
    assert issue["difference_fen"] == 700
    assert "refund_difference" in issue["actions"]
    return issue, headers


@pytest.mark.parametrize("pair", PAIRS, ids="-then-".join)
async def test_the_one_click_refund_of_a_double_payment_reaches_the_platform(
    pair: tuple[str, str],
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    # the store refunds by hand (the default)
    _, creds, order = await channel_setup(session, wechat, pair[0])
    code = await pay_twice(client, session, wechat, creds, order, pair)
    issue, headers = await offered_back(client, session, order)

    r = await client.post(
        f"/api/v1/orders/issues/{issue['id']}/actions",
        json={"action": "refund_difference", "note": "顾客扫了两次"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    assert r.json()["resolution"] == "refund_difference"
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert refund.amount_fen == 700
    # Through the latest attempt that holds enough (either payment would do).
    assert refund.payment_id == code["payment_id"]
    assert refund.out_refund_no == f"{code['out_trade_no']}R01"
    assert refund.channel == pair[1]
    assert await refunds_sent(wechat, pair[1]) == [(refund.out_refund_no, 700)]
    assert await refunds_sent(wechat, pair[0]) == (
        [] if pair[0] != pair[1] else [(refund.out_refund_no, 700)]
    )
    actions = set(
        (
            await session.scalars(
                select(AuditLog.action).where(AuditLog.entity_id == str(order.id))
            )
        ).all()
    )
    assert {"order.issue.refund_difference", "order.refund"} <= actions
    still_open = await session.scalar(
        select(OrderIssue.id).where(OrderIssue.order_id == order.id, OrderIssue.status == "open")
    )
    assert still_open is None
    # A second click finds nothing to do, and nothing more reaches the platform.
    r = await client.post(
        f"/api/v1/orders/issues/{issue['id']}/actions",
        json={"action": "refund_difference"},
        headers=headers,
    )
    assert r.status_code == 409, r.text

    await asyncio.sleep(0.1)  # the sandbox settles the refund; the job hears of it
    async with runtime.running(settings_for(db_url), sessionmaker):
        await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS))
    await session.refresh(refund)
    assert refund.status == "succeeded"
    await session.refresh(order)
    assert (order.status, order.paid_fen, order.refunded_fen) == ("paid", 1400, 700)


@pytest.mark.parametrize("pair", PAIRS, ids="-then-".join)
async def test_a_store_set_to_refund_gets_a_double_payment_back_at_once(
    pair: tuple[str, str], client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    # The chain's account leaves double payments to a person; store A chooses otherwise.
    store, creds, order = await channel_setup(
        session, wechat, pair[0], auto_refund_duplicates=False
    )
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.patch(
        f"/api/v1/stores/{store.id}", json={"auto_refund_duplicates": True}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["auto_refund_duplicates"] is True
    entry = await session.scalar(
        select(AuditLog).where(
            AuditLog.action == "store.update", AuditLog.entity_id == str(store.id)
        )
    )
    assert entry is not None
    assert entry.changes == {"auto_refund_duplicates": {"before": None, "after": True}}

    await pay_twice(client, session, wechat, creds, order, pair)
    assert order.paid_fen == 1400
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert refund.amount_fen == 700
    # back through the payment that brought the extra: the QR's, on its platform
    assert refund.channel == pair[0]
    assert await refunds_sent(wechat, pair[0]) == [(refund.out_refund_no, 700)]
    issue = await session.scalar(
        select(OrderIssue).where(
            OrderIssue.order_id == order.id, OrderIssue.kind == "amount_mismatch"
        )
    )
    assert issue is not None
    assert issue.status == "resolved"  # nothing left for a person


async def test_a_store_without_its_own_setting_follows_the_account(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    # Same chain account (refunds by hand); store A refunds at once, store B says nothing.
    store_a, _, _ = await setup(session, wechat, auto_refund_duplicates=False)
    store_a.auto_refund_duplicates = True
    store_b = await make_store(session)
    cola = await make_product(session, stores=[store_b], price_fen=350)
    creds = await make_active_terminal(session, store_b)
    order = await make_order(session, store_b, [(cola, 2)], terminal=creds.terminal)

    await pay_twice(client, session, wechat, creds, order)
    await offered_back(client, session, order)
    assert await refunds_sent(wechat, "wechat") == []
