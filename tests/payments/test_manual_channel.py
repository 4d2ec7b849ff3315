"""The payment seam: channels behind one protocol; the manual channel records money handled
by hand, once per reference."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import ValidationFailed
from selfmart.models import Payment
from selfmart.payments import channels
from selfmart.payments.channels import ManualChannel, PaymentChannel, PaymentRequest, RefundRequest
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product


async def test_the_manual_channel_succeeds_at_once_and_cannot_be_queried() -> None:
    chan: PaymentChannel = channels.get("manual")
    assert isinstance(chan, ManualChannel)
    assert chan.queryable is False
    paid = await chan.collect(
        PaymentRequest(
            order_id=1, order_no="1", store_id=1, amount_fen=500, extra={"reference": "X"}
        )
    )
    assert (paid.status, paid.amount_fen, paid.channel_txn_id) == ("succeeded", 500, "X")
    assert paid.paid_at is not None
    asked = await chan.query("X", "1")
    assert asked.status == "unknown"
    back = await chan.refund(
        RefundRequest(
            refund_id=1,
            payment_channel_txn_id="X",
            payment_amount_fen=500,
            amount_fen=200,
            reason="r",
        )
    )
    assert back.status == "succeeded"
    assert back.completed_at is not None


def test_an_unknown_channel_is_a_422_naming_the_field() -> None:
    with pytest.raises(ValidationFailed) as info:
        channels.get("bitcoin")
    assert info.value.details[0].field == "channel"
    assert "manual" in channels.codes()


async def test_a_reference_is_recorded_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    p = await make_product(session, stores=[store], price_fen=500)
    first = await make_order(session, store, [(p, 1)])
    second = await make_order(session, store, [(p, 1)])
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{first.id}/payments", json={"reference": "BANK-42"}, headers=h
    )
    assert r.status_code == 201
    r = await client.post(
        f"/api/v1/orders/{second.id}/payments", json={"reference": "BANK-42"}, headers=h
    )
    assert r.status_code == 409
    assert r.json()["error"] == "already_exists"
    assert r.json()["details"][0]["field"] == "reference"
    assert (
        await session.scalar(select(func.count(Payment.id)).where(Payment.order_id == second.id))
        == 0
    )
    await session.refresh(second)
    assert second.status == "awaiting_payment"
