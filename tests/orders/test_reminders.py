"""A reminder with the order's link goes to the customer's phone, after commit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import Settings
from selfmart.kit.time import utcnow
from selfmart.models import NotificationDelivery, OrderIssue, User
from selfmart.notify import channels as notify_channels
from selfmart.notify.channels import Outgoing
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product


class SmsDouble:
    """Stands in for the SMS provider (which arrives with the alerts work)."""

    name = "sms"

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def address_of(self, user: User) -> str | None:
        return user.phone

    async def deliver(self, message: Outgoing, settings: Settings) -> None:
        self.sent.append(message)


@pytest.fixture
def sms() -> Iterator[SmsDouble]:
    previous = notify_channels._CHANNELS.get("sms")
    double = SmsDouble()
    notify_channels.register(double)
    yield double
    if previous is None:
        notify_channels._CHANNELS.pop("sms", None)
    else:
        notify_channels._CHANNELS["sms"] = previous


async def test_remind_texts_the_link_after_commit(
    client: httpx.AsyncClient, session: AsyncSession, sms: SmsDouble, jobs: Any
) -> None:
    store = await make_store(session)
    p = await make_product(session, stores=[store], price_fen=1250)
    order = await make_order(
        session, store, [(p, 1)], status="payment_failed", customer_phone="13912345678"
    )
    issue = OrderIssue(
        order_id=order.id,
        store_id=store.id,
        kind="payment_failed",
        status="open",
        stage="person",
        detail={},
        opened_at=utcnow(),
    )
    session.add(issue)
    await session.flush()
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/issues/{issue.id}/actions",
        json={"action": "remind", "via": "sms"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open"  # settles when the money arrives
    assert len(sms.sent) == 1
    text = sms.sent[0].body
    assert order.order_no in text
    assert "¥12.50" in text
    assert "/r/" in text
    assert sms.sent[0].recipient == "13912345678"
    delivery = await session.scalar(
        select(NotificationDelivery).where(NotificationDelivery.kind == "order.payment_reminder")
    )
    assert delivery is not None
    d = (await client.get(f"/api/v1/orders/{order.id}", headers=h)).json()
    reminder = next(e for e in d["timeline"] if e["kind"] == "reminder")
    assert reminder["data"]["to"] == "***5678"

    r = await client.post(
        f"/api/v1/orders/issues/{issue.id}/actions",
        json={"action": "remind", "via": "member_message"},
        headers=h,
    )
    assert r.status_code == 409
    assert r.json()["details"][0]["field"] == "via"


async def test_no_phone_no_reminder(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    order = await make_order(
        session, store, [(await make_product(session, stores=[store]), 1)], status="payment_failed"
    )
    issue = OrderIssue(
        order_id=order.id,
        store_id=store.id,
        kind="payment_failed",
        status="open",
        stage="person",
        detail={},
        opened_at=utcnow(),
    )
    session.add(issue)
    await session.flush()
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/issues/{issue.id}/actions", json={"action": "remind"}, headers=h
    )
    assert r.status_code == 409
    assert r.json()["error"] == "action_not_allowed"
