"""Platform callbacks, as our WeChat Pay sandbox sends them (signed with its platform key, the
resource encrypted with the APIv3 key): recorded verified or not, believed only when the
signature verifies and merchant, number and amount are ours, applied once however often they
come; a tampered or forged callback is refused and recorded; an amount off by one fen makes
an abnormal order, not a paid one; a double payment offers (or makes) the refund of the
extra; a payment after the order was closed goes back whole."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from selfmart.app import create_app
from selfmart.db import make_sessionmaker
from selfmart.kit.time import utcnow
from selfmart.models import (
    AuditLog,
    Order,
    OrderEvent,
    OrderIssue,
    OrderLine,
    Payment,
    PaymentAccount,
    PaymentCallback,
    Product,
    ProductBarcode,
    Refund,
    Store,
    StoreProduct,
    Terminal,
    TerminalKey,
    TerminalNonce,
)
from selfmart.payments.wechatpay import protocol as wx
from selfmart.sandbox.wechatpay.keys import load as load_sandbox_keys
from tests.builders import auth_headers, make_user
from tests.orders.builders import make_order, make_product
from tests.payments.builders import sandbox_account
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Received, Sandbox
from tests.support import settings_for
from tests.terminals.builders import Credentials, make_active_terminal


async def pay_by_hand(client: httpx.AsyncClient, session: AsyncSession, order_id: int) -> None:
    """A person records money taken by hand (the manual channel) for the whole order."""
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{order_id}/payments", json={"reference": "CASH-1"}, headers=headers
    )
    assert r.status_code == 201, r.text


def _notify_url(account_id: int) -> str:
    return f"/api/payments/notify/wechat/{account_id}"


def _replayable(call: Received) -> dict[str, str]:
    return {
        k: v
        for k, v in call.headers.items()
        if k.lower().startswith("wechatpay-") or k.lower() == "content-type"
    }


async def _callback_for_qr_payment(
    client: httpx.AsyncClient, wechat: Sandbox, creds: Any, order: Order, attempt: str = "Q1"
) -> tuple[dict[str, Any], Received]:
    """Show a QR, let the customer pay in the sandbox, and catch the callback it sends."""
    r = await pay(client, creds, order.order_no, mode="qr", attempt_id=attempt)
    assert r.status_code == 201, r.text
    started = r.json()
    approved = await asyncio.to_thread(
        wechat.control, "POST", f"/payments/{started['out_trade_no']}/approve"
    )
    assert approved.status_code < 300, approved.text
    calls = await asyncio.to_thread(wechat.receiver.wait_for, "/notify", 1)
    return started, calls[-1]


async def _deliver(client: httpx.AsyncClient, account_id: int, call: Received) -> httpx.Response:
    return await client.post(_notify_url(account_id), content=call.body, headers=_replayable(call))


async def _account_id(session: AsyncSession) -> int:
    account_id = await session.scalar(select(func.max(PaymentAccount.id)))
    assert account_id is not None
    return int(account_id)


async def test_a_verified_callback_pays_the_order_once(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    started, call = await _callback_for_qr_payment(client, wechat, creds, order)
    account_id = await _account_id(session)

    for _ in range(3):
        r = await _deliver(client, account_id, call)
        assert r.status_code in (200, 204), r.text
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
    payment = await session.get(Payment, started["payment_id"])
    assert payment is not None
    assert payment.status == "succeeded"
    assert payment.channel_txn_id
    rows = (await session.scalars(select(PaymentCallback).order_by(PaymentCallback.id))).all()
    assert [(c.verified, c.outcome) for c in rows] == [
        (True, "applied"),
        (True, "duplicate"),
        (True, "duplicate"),
    ]
    assert rows[0].payment_id == payment.id
    assert rows[0].amount_fen == 700
    assert rows[0].decoded
    assert wechat.credentials()["api_v3_key"] not in json.dumps(rows[0].decoded)
    pays = (
        await session.scalars(
            select(OrderEvent).where(
                OrderEvent.order_id == order.id, OrderEvent.to_status == "paid"
            )
        )
    ).all()
    assert len(pays) == 1


async def test_a_tampered_or_misaddressed_callback_is_refused_and_recorded(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    _, call = await _callback_for_qr_payment(client, wechat, creds, order)
    account_id = await _account_id(session)

    tampered = Received(call.at, call.path, call.headers, call.body.replace(b'"', b"'", 1))
    r = await _deliver(client, account_id, tampered)
    assert r.status_code >= 400
    unknown_key = dict(call.headers)
    for name in list(unknown_key):
        if name.lower() == "wechatpay-serial":
            unknown_key[name] = "PUB_KEY_ID_NOT_OURS"
    r = await _deliver(client, account_id, Received(call.at, call.path, unknown_key, call.body))
    assert r.status_code >= 400
    r = await client.post(_notify_url(999_999), content=call.body, headers=_replayable(call))
    assert r.status_code == 404
    r = await client.post(
        f"/api/payments/notify/alipay/{account_id}", content=call.body, headers=_replayable(call)
    )
    assert r.status_code == 404

    await session.refresh(order)
    assert order.status == "awaiting_payment"
    rows = (await session.scalars(select(PaymentCallback).order_by(PaymentCallback.id))).all()
    assert [(c.verified, c.outcome) for c in rows] == [(False, "rejected")] * 4
    assert all(c.reason for c in rows)
    assert rows[0].body  # kept as received


async def test_an_amount_off_by_one_fen_is_abnormal_not_paid(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    started, call = await _callback_for_qr_payment(client, wechat, creds, order)
    # Our record of the attempt says 701 (as if the platform had been told another amount).
    await session.execute(
        update(Payment).where(Payment.id == started["payment_id"]).values(amount_fen=701)
    )
    r = await _deliver(client, await _account_id(session), call)
    assert r.status_code in (200, 204), r.text
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("awaiting_payment", 0)
    issue = await session.scalar(select(OrderIssue).where(OrderIssue.order_id == order.id))
    assert issue is not None
    assert issue.kind == "amount_mismatch"
    assert issue.detail["reported_fen"] == 700
    record = await session.scalar(select(PaymentCallback))
    assert record is not None
    assert (record.verified, record.outcome) == (True, "mismatch")


async def test_a_double_payment_offers_the_extra_back(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat, auto_refund_duplicates=True)
    # A QR shown; a person takes the money by hand meanwhile; then the customer pays the QR.
    # (Two platform attempts cannot both be open: tests/payments/test_one_open_attempt.py.)
    r = await pay(client, creds, order.order_no, mode="qr", attempt_id="Q1")
    qr = r.json()
    await pay_by_hand(client, session, order.id)
    await asyncio.to_thread(wechat.control, "POST", f"/payments/{qr['out_trade_no']}/approve")
    calls = await asyncio.to_thread(wechat.receiver.wait_for, "/notify", 1)
    for call in calls:
        r = await _deliver(client, await _account_id(session), call)
        assert r.status_code in (200, 204), r.text

    await session.refresh(order)
    assert order.paid_fen == 1400
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert refund.amount_fen == 700
    assert refund.payment_id == qr["payment_id"]
    assert refund.out_refund_no == f"{qr['out_trade_no']}R01"
    assert refund.status in ("pending", "succeeded")
    issue = await session.scalar(
        select(OrderIssue).where(
            OrderIssue.order_id == order.id, OrderIssue.kind == "amount_mismatch"
        )
    )
    assert issue is not None
    assert issue.status == "resolved"  # refunded automatically: nothing left for a person


async def test_a_payment_after_the_order_closed_goes_back_whole(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    r = await pay(client, creds, order.order_no, mode="qr")
    started = r.json()
    await session.execute(update(Order).where(Order.id == order.id).values(status="closed"))
    await asyncio.to_thread(wechat.control, "POST", f"/payments/{started['out_trade_no']}/approve")
    calls = await asyncio.to_thread(wechat.receiver.wait_for, "/notify", 1)
    r = await _deliver(client, await _account_id(session), calls[-1])
    assert r.status_code in (200, 204), r.text
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("closed", 0)
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert (refund.amount_fen, refund.payment_id) == (700, started["payment_id"])
    received = (await asyncio.to_thread(wechat.control, "GET", "/received")).json()
    assert any("/v3/refund/domestic/refunds" in json.dumps(q) for q in received["requests"])


async def test_a_payment_after_the_order_was_refunded_goes_back_without_counting_twice(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """The order was paid another way and refunded in full while a QR payment still waited:
    when that payment succeeds its money goes back whole, and the order's refunded total
    stays what it paid (the late money was never counted in)."""
    _, creds, order = await setup(session, wechat)
    r = await pay(client, creds, order.order_no, mode="qr")
    started = r.json()
    await session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(status="refunded", paid_fen=700, refunded_fen=700)
    )
    await asyncio.to_thread(wechat.control, "POST", f"/payments/{started['out_trade_no']}/approve")
    calls = await asyncio.to_thread(wechat.receiver.wait_for, "/notify", 1)
    account_id = await _account_id(session)
    r = await _deliver(client, account_id, calls[-1])
    assert r.status_code in (200, 204), r.text
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert (refund.amount_fen, refund.payment_id) == (700, started["payment_id"])
    # The sandbox settles the refund by its callback; deliver every callback it sent.
    calls = await asyncio.to_thread(wechat.receiver.wait_for, "/notify", 2)
    for call in calls:
        r = await _deliver(client, account_id, call)
        assert r.status_code in (200, 204), r.text
    await session.refresh(refund)
    assert refund.status == "succeeded"
    await session.refresh(order)
    assert (order.status, order.paid_fen, order.refunded_fen) == ("refunded", 700, 700)


# --- real concurrent connections (PostgreSQL) ---------------------------------------------------


@dataclass
class World:
    store_id: int
    account_id: int
    client: httpx.AsyncClient
    engine: AsyncEngine


@asynccontextmanager
async def open_world(engine: AsyncEngine, db_url: str, wechat: Sandbox) -> AsyncIterator[World]:
    """A store with a sandbox WeChat account, committed, and a client of an app on `engine`
    (its own connections, really concurrent); all of it deleted afterwards."""
    factory = make_sessionmaker(engine)
    async with factory() as s:
        store = Store(code=f"P{uuid.uuid4().hex[:6].upper()}", name="回调并发店", city="上海")
        s.add(store)
        await s.flush()
        account = await sandbox_account(
            s, store, wechat.credentials(), notify_url=f"{wechat.receiver.url}/notify"
        )
        await s.commit()
        store_id, account_id = store.id, account.id
    app = create_app(settings_for(db_url), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield World(store_id, account_id, client, engine)
    async with factory() as s:
        order_ids = select(Order.id).where(Order.store_id == store_id)
        await s.execute(delete(PaymentCallback).where(PaymentCallback.account_id == account_id))
        await s.execute(delete(Refund).where(Refund.store_id == store_id))
        await s.execute(delete(OrderEvent).where(OrderEvent.order_id.in_(order_ids)))
        await s.execute(delete(OrderIssue).where(OrderIssue.order_id.in_(order_ids)))
        await s.execute(delete(OrderLine).where(OrderLine.order_id.in_(order_ids)))
        await s.execute(delete(Payment).where(Payment.store_id == store_id))
        await s.execute(delete(AuditLog).where(AuditLog.store_id == store_id))
        await s.execute(delete(Order).where(Order.store_id == store_id))
        await s.execute(delete(PaymentAccount).where(PaymentAccount.id == account_id))
        terminal_ids = select(Terminal.id).where(Terminal.store_id == store_id)
        await s.execute(delete(TerminalNonce).where(TerminalNonce.terminal_id.in_(terminal_ids)))
        await s.execute(delete(TerminalKey).where(TerminalKey.terminal_id.in_(terminal_ids)))
        await s.execute(delete(Terminal).where(Terminal.store_id == store_id))
        product_ids = select(StoreProduct.product_id).where(StoreProduct.store_id == store_id)
        pids = list((await s.scalars(product_ids)).all())
        await s.execute(delete(StoreProduct).where(StoreProduct.store_id == store_id))
        await s.execute(delete(ProductBarcode).where(ProductBarcode.product_id.in_(pids)))
        await s.execute(delete(Product).where(Product.id.in_(pids)))
        await s.execute(delete(Store).where(Store.id == store_id))
        await s.commit()


async def world_order(world: World) -> tuple[Credentials, Order]:
    """A terminal of the world's store and its order of two colas (700 fen), committed."""
    async with make_sessionmaker(world.engine)() as s:
        store = await s.get(Store, world.store_id)
        assert store is not None
        cola = await make_product(s, stores=[store], price_fen=350)
        creds = await make_active_terminal(s, store)
        order = await make_order(s, store, [(cola, 2)], terminal=creds.terminal)
        await s.commit()
        return creds, order


@pytest.fixture
async def world(
    engine: AsyncEngine, db_url: str, backend: str, wechat: Sandbox
) -> AsyncIterator[World]:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections: PostgreSQL only")
    async with open_world(engine, db_url, wechat) as world:
        yield world


@pytest.mark.postgres_only
async def test_ten_copies_at_once_change_the_order_once(world: World, wechat: Sandbox) -> None:
    factory = make_sessionmaker(world.engine)
    creds, order = await world_order(world)
    order_id = order.id
    started, call = await _callback_for_qr_payment(world.client, wechat, creds, order)

    answers = await asyncio.gather(
        *(_deliver(world.client, world.account_id, call) for _ in range(10))
    )
    assert all(a.status_code in (200, 204) for a in answers), [a.text for a in answers]
    async with factory() as s:
        placed = await s.get(Order, order_id)
        assert placed is not None
        assert (placed.status, placed.paid_fen) == ("paid", 700)
        outcomes = (
            await s.scalars(
                select(PaymentCallback.outcome).where(
                    PaymentCallback.payment_id == started["payment_id"]
                )
            )
        ).all()
        assert sorted(outcomes) == ["applied"] + ["duplicate"] * 9
        paid_events = await s.scalar(
            select(func.count())
            .select_from(OrderEvent)
            .where(OrderEvent.order_id == order_id, OrderEvent.to_status == "paid")
        )
        assert paid_events == 1
        issues = await s.scalar(
            select(func.count()).select_from(OrderIssue).where(OrderIssue.order_id == order_id)
        )
        assert issues == 0


def _platform_callback(
    wechat: Sandbox,
    out_trade_no: str,
    *,
    amount_fen: int = 700,
    age: timedelta = timedelta(0),
    mchid: str | None = None,
    appid: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A TRANSACTION.SUCCESS notification signed and encrypted with the sandbox platform's own
    keys by the protocol's functions (for numbers and times the sandbox would never send)."""
    keys = load_sandbox_keys(wechat.settings.payment_sandbox_dir)
    at = utcnow() - age
    resource = {
        "appid": appid or keys.appid,
        "mchid": mchid or keys.mchid,
        "out_trade_no": out_trade_no,
        "transaction_id": "4200000000" + uuid.uuid4().hex[:18],
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "success_time": wx.rfc3339(at),
        "amount": {"total": amount_fen, "payer_total": amount_fen, "currency": "CNY"},
    }
    nonce = uuid.uuid4().hex[:12]
    body = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "create_time": wx.rfc3339(at),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": wx.AEAD,
                "ciphertext": wx.aead_encrypt(
                    keys.api_v3_key, nonce, "transaction", json.dumps(resource).encode()
                ),
                "associated_data": "transaction",
                "nonce": nonce,
            },
        }
    ).encode()
    headers = wx.response_headers(
        keys.public_key.key,
        keys.public_key.key_id,
        body,
        timestamp=str(int(at.timestamp())),
        nonce=wx.nonce_str(),
    )
    return body, {**headers, "Content-Type": "application/json"}


async def test_a_callback_for_another_merchant_or_app_is_refused_and_recorded(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """Signed by the platform and for our order number and amount, but addressed to another
    merchant id or another app id: not believed (the order stays unpaid), recorded as
    verified with the reason, answered so that the platform does not count it delivered."""
    _, creds, order = await setup(session, wechat)
    r = await pay(client, creds, order.order_no, mode="qr")
    started = r.json()
    account_id = await _account_id(session)
    for mchid, appid in (("1230000109", None), (None, "wxd678efh567hg6787")):
        body, headers = _platform_callback(
            wechat, started["out_trade_no"], mchid=mchid, appid=appid
        )
        r = await client.post(_notify_url(account_id), content=body, headers=headers)
        assert r.status_code >= 400, (mchid, appid, r.text)

    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("awaiting_payment", 0)
    payment = await session.get(Payment, started["payment_id"])
    assert payment is not None
    assert payment.status == "pending"
    rows = (await session.scalars(select(PaymentCallback).order_by(PaymentCallback.id))).all()
    assert [(c.verified, c.out_trade_no) for c in rows] == [
        (True, started["out_trade_no"]),
        (True, started["out_trade_no"]),
    ]
    assert all(c.reason == "the merchant id or app id is not this account's" for c in rows)


async def test_an_unknown_number_and_a_stale_callback_are_refused_and_recorded(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    r = await pay(client, creds, order.order_no, mode="qr")
    started = r.json()
    account_id = await _account_id(session)

    body, headers = _platform_callback(wechat, "NOSUCHORDER0001")
    r = await client.post(_notify_url(account_id), content=body, headers=headers)
    assert r.status_code >= 400  # the platform keeps it and tries again later

    body, headers = _platform_callback(wechat, started["out_trade_no"], age=timedelta(minutes=30))
    r = await client.post(_notify_url(account_id), content=body, headers=headers)
    assert r.status_code >= 400

    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("awaiting_payment", 0)
    rows = (await session.scalars(select(PaymentCallback).order_by(PaymentCallback.id))).all()
    assert [(c.verified, c.outcome) for c in rows] == [(True, "unmatched"), (False, "rejected")]
    assert rows[0].out_trade_no == "NOSUCHORDER0001"
    assert rows[1].reason
