"""The payment callback's hot path (payments.callbacks_hot): the common case is applied by it,
and it writes what the full path writes for the same callback, row for row; what is not the
common case (a member's order, an account changed since it was opened) still ends right."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import Headers

from selfmart.kit.time import utcnow
from selfmart.models import (
    AuditLog,
    Order,
    OrderEvent,
    Payment,
    PaymentAccount,
    PaymentCallback,
    Store,
    Terminal,
)
from selfmart.payments import callbacks_hot
from tests.orders.builders import make_order, make_product
from tests.payments.test_callbacks import _account_id, _deliver
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Received, Sandbox
from tests.terminals.builders import Credentials


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each verified common-case callback was applied by the hot path (by the app's
    fast lane, alone or in a batch, or by `try_apply`) or left to the full path: the real
    function runs, each outcome is noted."""
    seen: list[bool] = []
    real = callbacks_hot.apply_many
    # Accounts opened by earlier tests (ids are reused across test databases) start afresh.
    monkeypatch.setattr(callbacks_hot, "_OPENED", OrderedDict())

    async def noting(session: AsyncSession, items: list[Any]) -> list[bool]:
        applied = await real(session, items)
        seen.extend(applied)
        return applied

    monkeypatch.setattr(callbacks_hot, "apply_many", noting)
    return seen


async def _callback_for_qr_payment(
    client: httpx.AsyncClient, wechat: Sandbox, creds: Credentials, order: Order, attempt: str
) -> Received:
    """Show a QR, let the customer pay in the sandbox, and catch the callback it sends (the
    receiver keeps every earlier one: this one is the newest once there is one more)."""
    before = len(wechat.receiver.at("/notify"))
    r = await pay(client, creds, order.order_no, mode="qr", attempt_id=attempt)
    assert r.status_code == 201, r.text
    approved = await asyncio.to_thread(
        wechat.control, "POST", f"/payments/{r.json()['out_trade_no']}/approve"
    )
    assert approved.status_code < 300, approved.text
    calls = await asyncio.to_thread(wechat.receiver.wait_for, "/notify", before + 1)
    return calls[-1]


async def _order_like(session: AsyncSession, first: Order, creds: Credentials) -> Order:
    store = await session.get(Store, first.store_id)
    assert store is not None
    cola = await make_product(session, stores=[store], price_fen=350)
    terminal = await session.get(Terminal, creds.terminal.id)
    assert terminal is not None
    return await make_order(session, store, [(cola, 2)], terminal=terminal)


async def _written(session: AsyncSession, order: Order) -> dict[str, Any]:
    """Everything a paid callback writes about `order`, without ids and clock times."""
    fresh = await session.get(Order, order.id, populate_existing=True)
    assert fresh is not None
    payment = await session.scalar(
        select(Payment)
        .where(Payment.order_id == order.id)
        .execution_options(populate_existing=True)
    )
    assert payment is not None
    events = (
        await session.scalars(
            select(OrderEvent)
            .where(OrderEvent.order_id == order.id, OrderEvent.kind.in_(["payment", "transition"]))
            .where(OrderEvent.reason == "payment_callback")
            .order_by(OrderEvent.id)
        )
    ).all()
    entries = (
        await session.scalars(
            select(AuditLog).where(
                AuditLog.entity_type == "order",
                AuditLog.entity_id == str(order.id),
                AuditLog.action == "order.pay",
            )
        )
    ).all()
    records = (
        await session.scalars(select(PaymentCallback).where(PaymentCallback.order_id == order.id))
    ).all()

    def same_ids(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ("<payment>" if k == "payment_id" else v) for k, v in value.items()}
        return value

    return {
        "order": (
            fresh.status,
            fresh.paid_fen,
            fresh.payment_method,
            fresh.paid_at is not None,
            fresh.open_issues,
        ),
        "payment": (
            payment.status,
            bool(payment.channel_txn_id),
            payment.succeeded_at is not None,
            payment.failure_code,
            payment.failure_reason,
        ),
        "events": [
            (
                e.kind,
                e.from_status,
                e.to_status,
                e.actor_type,
                e.actor_id,
                e.actor_name,
                e.reason,
                e.note,
                same_ids(e.data),
                e.store_id,
            )
            for e in events
        ],
        "audit": [
            (
                a.actor_type,
                a.actor_id,
                a.actor_name,
                a.entity_label == fresh.order_no,
                a.store_id,
                a.changes,
                a.note,
            )
            for a in entries
        ],
        "records": [
            (
                r.channel,
                r.kind,
                r.verified,
                r.outcome,
                r.reason,
                r.status,
                r.amount_fen,
                r.payment_id == payment.id,
                r.transaction_id == payment.channel_txn_id,
                r.out_trade_no == payment.out_trade_no,
                bool(r.notification_id),
                sorted(r.headers),
                sorted(r.decoded),
                bool(r.body),
            )
            for r in records
        ],
    }


async def test_the_hot_path_writes_what_the_full_path_writes(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: Sandbox,
    taken: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, creds, hot_order = await setup(session, wechat)
    full_order = await _order_like(session, hot_order, creds)
    account_id = await _account_id(session)

    call = await _callback_for_qr_payment(client, wechat, creds, hot_order, attempt="H1")
    r = await _deliver(client, account_id, call)
    assert r.status_code in (200, 204), r.text
    assert taken == [True]

    call = await _callback_for_qr_payment(client, wechat, creds, full_order, attempt="F1")
    monkeypatch.setattr(callbacks_hot, "prepare", _never)
    r = await _deliver(client, account_id, call)
    assert r.status_code in (200, 204), r.text

    hot, full = await _written(session, hot_order), await _written(session, full_order)
    assert hot["order"] == ("paid", 700, "wechat", True, 0)
    assert hot["payment"] == ("succeeded", True, True, None, None)
    assert [e[:3] for e in hot["events"]] == [
        ("payment", None, None),
        ("transition", "awaiting_payment", "paid"),
    ]
    assert len(hot["audit"]) == 1
    assert [r[3] for r in hot["records"]] == ["applied"]
    assert hot == full


async def _never(session: AsyncSession | None, **kwargs: Any) -> None:
    """The full path only (what the hot path is compared with): no callback is the common
    case, for the fast lane or for `try_apply`."""
    return None


async def test_copies_of_a_paid_callback_go_the_full_way_and_change_nothing(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox, taken: list[bool]
) -> None:
    _, creds, order = await setup(session, wechat)
    call = await _callback_for_qr_payment(client, wechat, creds, order, "Q1")
    account_id = await _account_id(session)
    for _ in range(3):
        r = await _deliver(client, account_id, call)
        assert r.status_code in (200, 204), r.text
    assert taken == [True, False, False]
    written = await _written(session, order)
    assert len(written["events"]) == 2
    assert [r[3] for r in written["records"]] == ["applied", "duplicate", "duplicate"]


async def test_ten_copies_open_the_account_once_and_change_the_order_once(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: Sandbox,
    taken: list[bool],
    openings: list[int],
) -> None:
    """A copy the hot path does not apply (the payment is no longer pending) goes the full way
    and is recorded a duplicate, but the account kept opened is still the row's: nothing makes
    the next callback open it again."""
    _, creds, order = await setup(session, wechat)
    call = await _callback_for_qr_payment(client, wechat, creds, order, "C1")
    account_id = await _account_id(session)
    openings.clear()  # (the terminal's pay opened it)
    for _ in range(10):
        r = await _deliver(client, account_id, call)
        assert r.status_code in (200, 204), r.text
    assert openings == [account_id]
    assert taken == [True] + [False] * 9
    written = await _written(session, order)
    assert written["order"][:2] == ("paid", 700)
    assert [e[:3] for e in written["events"]] == [
        ("payment", None, None),
        ("transition", "awaiting_payment", "paid"),
    ]
    assert len(written["audit"]) == 1
    assert sorted(r[3] for r in written["records"]) == ["applied"] + ["duplicate"] * 9


async def test_an_account_changed_since_it_was_opened_is_read_again(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox, taken: list[bool]
) -> None:
    _, creds, first = await setup(session, wechat)
    second = await _order_like(session, first, creds)
    account_id = await _account_id(session)
    call = await _callback_for_qr_payment(client, wechat, creds, first, attempt="A1")
    r = await _deliver(client, account_id, call)
    assert r.status_code in (200, 204), r.text

    # The account's settings are saved again (keys rotated, say): the opened account kept
    # from the first callback is no longer the row's.
    await session.execute(
        update(PaymentAccount).where(PaymentAccount.id == account_id).values(updated_at=utcnow())
    )
    call = await _callback_for_qr_payment(client, wechat, creds, second, attempt="A2")
    r = await _deliver(client, account_id, call)
    assert r.status_code in (200, 204), r.text
    written = await _written(session, second)
    assert written["order"][:2] == ("paid", 700)
    assert [r[3] for r in written["records"]] == ["applied"]
    # And the next one takes the hot path again, with the account opened from the new row.
    third = await _order_like(session, first, creds)
    call = await _callback_for_qr_payment(client, wechat, creds, third, attempt="A3")
    r = await _deliver(client, account_id, call)
    assert r.status_code in (200, 204), r.text
    assert taken[0] is True
    assert taken[-1] is True
    assert (await _written(session, third))["order"][:2] == ("paid", 700)


def test_kept_headers_are_the_same_from_raw_headers_and_from_a_mapping() -> None:
    """A callback's record keeps the headers verification reads (and only those), named in
    lower case, each cut to 1,000 characters: from the request's raw headers (the lane and
    the route) as from any mapping."""
    sent = [
        ("Content-Type", "application/json"),
        ("Wechatpay-Serial", "PUB_KEY_ID_0114"),
        ("Wechatpay-Signature", "s" * 1200),
        ("Request-ID", "r-1"),
        ("User-Agent", "platform/1.0"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("Cookie", "secret=1"),
    ]
    raw = Headers(raw=[(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in sent])
    wanted = {
        "content-type": "application/json",
        "wechatpay-serial": "PUB_KEY_ID_0114",
        "wechatpay-signature": "s" * 1000,
        "request-id": "r-1",
        "user-agent": "platform/1.0",
    }
    assert callbacks_hot.kept_headers(raw) == wanted
    assert callbacks_hot.kept_headers(dict(sent)) == wanted
    # a name the client sent in capitals (a raw list built by hand) is kept in lower case
    upper = Headers(raw=[(b"Wechatpay-Nonce", b"n1"), (b"X-Other", b"x")])
    assert callbacks_hot.kept_headers(upper) == {"wechatpay-nonce": "n1"}
