"""The payment callback's hot path (CONVENTIONS.md §13): the common case — a verified SUCCESS
notification of a pending attempt, for the amount we asked, of an order that waits for exactly
that money and has no open issue — applied in a few Core statements on the request's
transaction (kit.hotsql), instead of the ORM's dozen.

  1. the merchant account's row (its opened platform account is kept per process);
  2. the payment and its order, the order's row locked (`FOR UPDATE OF orders`): the lock every
     other path takes first, so the order of locks is the same everywhere;
  3. `UPDATE payments ... WHERE status = 'pending' RETURNING id`: the payment leaves pending
     once, whoever races for it;
  4. the order paid, its two timeline entries, the audit entry and the callback's record
     (on PostgreSQL one statement; elsewhere four).

It writes what the full path (`callbacks.receive` → `attempts.settle_success` →
`orders.apply_payment`) writes for the same callback, row for row, and calls the same hooks
(the member's points and tier; the live feed; the sales summaries follow the timeline).
Anything else — a refusal, a refund, a failure, an amount that is not ours, an order already
paid, closed or with an open issue, a payment no longer pending — returns None having written
nothing, and the full path decides.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.kit import hotsql
from selfmart.kit.hotsql import HotStatement
from selfmart.kit.time import utcnow
from selfmart.models import (
    AuditLog,
    Order,
    OrderEvent,
    Payment,
    PaymentAccount,
    PaymentCallback,
)
from selfmart.orders import lifecycle
from selfmart.orders.statemachine import OrderStatus
from selfmart.payments import accounts
from selfmart.payments.platform import (
    NotificationAnswer,
    NotificationRejected,
    PlatformAccount,
)

S = OrderStatus
_orders = cast(Table, Order.__table__)
_payments = cast(Table, Payment.__table__)
_accounts = cast(Table, PaymentAccount.__table__)
_events = cast(Table, OrderEvent.__table__)
_audit_logs = cast(Table, AuditLog.__table__)
_callbacks = cast(Table, PaymentCallback.__table__)

#: Headers kept with a callback's record (what verification reads); others are dropped.
_KEPT_HEADERS = ("content-type", "request-id", "user-agent")
_KEPT_PREFIXES = ("wechatpay-",)
BODY_LIMIT = 64 * 1024
#: Why the order moves (timeline and audit), as the full path says it.
REASON = "payment_callback"


def callback_actor(channel: str) -> Actor:
    return Actor(
        kind="payment_callback",
        id=None,
        name=f"{channel} callback",
        permissions=frozenset(),
        store_ids=None,
    )


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        low = name.lower()
        if low in _KEPT_HEADERS or low.startswith(_KEPT_PREFIXES):
            out[low] = value[:1000]
    return out


def _text(value: str) -> ColumnElement[str]:
    """A constant in the SQL itself, not a parameter (a HotStatement's parameters are the
    caller's named ones)."""
    assert value.isidentifier()
    return literal_column(f"'{value}'", String)


# --- the statements, compiled once ---------------------------------------------------------------

_ACCOUNT = HotStatement(
    select(
        _accounts.c.channel,
        _accounts.c.merchant_id,
        _accounts.c.app_id,
        _accounts.c.updated_at,
        _accounts.c.key_version,
    ).where(_accounts.c.id == bindparam("account_id"))
)

_PAYMENT_AND_ORDER = HotStatement(
    select(
        _payments.c.id,
        _payments.c.status,
        _payments.c.amount_fen,
        _payments.c.channel,
        _orders.c.id,
        _orders.c.status,
        _orders.c.total_fen,
        _orders.c.paid_fen,
        _orders.c.open_issues,
        _orders.c.member_id,
        _orders.c.order_no,
        _orders.c.store_id,
    )
    .select_from(_payments.join(_orders, _orders.c.id == _payments.c.order_id))
    .where(
        _payments.c.account_id == bindparam("account_id"),
        _payments.c.out_trade_no == bindparam("out_trade_no"),
    )
    .with_for_update(of=_orders)
)

_SETTLE_PAYMENT = HotStatement(
    update(_payments)
    .where(_payments.c.id == bindparam("p_id"), _payments.c.status == _text("pending"))
    .values(
        status=_text("succeeded"),
        channel_txn_id=func.coalesce(
            bindparam("p_txn", type_=_payments.c.channel_txn_id.type), _payments.c.channel_txn_id
        ),
        succeeded_at=bindparam("p_succeeded_at", type_=_payments.c.succeeded_at.type),
        failure_code=null(),
        failure_reason=null(),
        updated_at=bindparam("p_now", type_=_payments.c.updated_at.type),
    )
    .returning(_payments.c.id)
)

_PAY_ORDER = (
    update(_orders)
    .where(_orders.c.id == bindparam("o_id"), _orders.c.status == _text(S.AWAITING_PAYMENT.value))
    .values(
        paid_fen=_orders.c.paid_fen + bindparam("o_amount", type_=_orders.c.paid_fen.type),
        payment_method=bindparam("o_method", type_=_orders.c.payment_method.type),
        status=_text(S.PAID.value),
        paid_at=bindparam("o_now", type_=_orders.c.paid_at.type),
        updated_at=bindparam("o_now", type_=_orders.c.updated_at.type),
    )
    .returning(_orders.c.id)
)

_EVENT_KEYS = (
    "order_id", "store_id", "occurred_at", "kind", "from_status", "to_status", "actor_type",
    "actor_id", "actor_name", "reason", "note", "data",
)  # fmt: skip
_AUDIT_KEYS = (
    "occurred_at", "actor_type", "actor_id", "actor_name", "action", "entity_type",
    "entity_id", "entity_label", "store_id", "changes", "note", "ip", "request_id",
)  # fmt: skip
_CALLBACK_KEYS = (
    "channel", "account_id", "received_at", "kind", "verified", "outcome", "reason",
    "notification_id", "out_trade_no", "out_refund_no", "transaction_id", "status",
    "amount_fen", "order_id", "payment_id", "refund_id", "headers", "body", "decoded",
)  # fmt: skip


def _rows_insert(table: Table, prefix: str, keys: tuple[str, ...], count: int) -> Any:
    """INSERT of `count` rows as SELECTs of named parameters ("{prefix}{row}_{column}")."""
    rows = [
        select(*(bindparam(f"{prefix}{i}_{k}", type_=table.c[k].type) for k in keys))
        for i in range(count)
    ]
    return insert(table).from_select(list(keys), rows[0] if count == 1 else union_all(*rows))


def _apply_statement() -> HotStatement:
    """PostgreSQL: the order paid, its timeline, the audit entry and the callback's record in
    one statement (one round trip)."""
    stmt = _rows_insert(_callbacks, "c", _CALLBACK_KEYS, 1)
    stmt = stmt.add_cte(_PAY_ORDER.cte("paid"))
    stmt = stmt.add_cte(_rows_insert(_events, "e", _EVENT_KEYS, 2).cte("ev"))
    stmt = stmt.add_cte(_rows_insert(_audit_logs, "a", _AUDIT_KEYS, 1).cte("au"))
    return HotStatement(stmt)


_APPLY_PG = _apply_statement()


# --- opened platform accounts ---------------------------------------------------------------------

#: (account id, updated_at, key_version) -> the opened account: settings that change (keys
#: rotated, ids edited) change updated_at, so a stale entry is never found again.
_OPENED: OrderedDict[tuple[int, Any, str], PlatformAccount] = OrderedDict()
_OPENED_MAX = 64


async def _platform(
    session: AsyncSession, account_id: int, updated_at: datetime | None, key_version: str
) -> PlatformAccount | None:
    key = (account_id, updated_at, key_version)
    opened = _OPENED.get(key)
    if opened is not None:
        return opened
    account = await session.get(PaymentAccount, account_id)
    if account is None or (account.updated_at, account.key_version) != (updated_at, key_version):
        return None  # changed meanwhile: the full path reads it again
    opened = accounts.open_platform(account)
    _OPENED[key] = opened
    while len(_OPENED) > _OPENED_MAX:
        _OPENED.popitem(last=False)
    return opened


# --- the hot path ---------------------------------------------------------------------------------


async def try_apply(
    session: AsyncSession,
    *,
    channel: str,
    account_id: int,
    headers: Mapping[str, str],
    body: bytes,
) -> NotificationAnswer | None:
    """Apply one callback if it is the common case; else None, having written nothing."""
    received_at = utcnow()
    found = await hotsql.fetch(session, _ACCOUNT, {"account_id": account_id})
    if not found:
        return None
    acc_channel, merchant_id, app_id, updated_at, key_version = found[0]
    if acc_channel != channel:
        return None
    remote = await _platform(session, account_id, updated_at, key_version)
    if remote is None:
        return None
    try:
        note = remote.parse_notification(headers, body)
    except NotificationRejected:
        return None
    if (
        note.kind != "payment"
        or note.status != "succeeded"
        or note.merchant_id != merchant_id
        or (app_id and note.app_id and note.app_id != app_id)
        or not note.out_trade_no
    ):
        return None
    rows = await hotsql.fetch(
        session,
        _PAYMENT_AND_ORDER,
        {"account_id": account_id, "out_trade_no": note.out_trade_no},
    )
    if not rows:
        return None
    (
        payment_id, payment_status, payment_amount, payment_channel,
        order_id, order_status, total_fen, paid_fen, open_issues, member_id, order_no, store_id,
    ) = rows[0]  # fmt: skip
    if (
        payment_status != "pending"
        or note.amount_fen != payment_amount
        or order_status != S.AWAITING_PAYMENT.value
        or paid_fen + payment_amount != total_fen
        or open_issues
    ):
        return None
    now = utcnow()
    settled = await hotsql.fetch(
        session,
        _SETTLE_PAYMENT,
        {
            "p_id": payment_id,
            "p_txn": note.transaction_id or None,
            "p_succeeded_at": note.occurred_at or now,
            "p_now": now,
        },
    )
    if not settled:
        return None  # no longer pending (the order's lock is held; nothing written)

    actor = callback_actor(channel)
    event_base = {
        "order_id": order_id,
        "store_id": store_id,
        "occurred_at": now,
        "actor_type": actor.kind,
        "actor_id": actor.audit_id,
        "actor_name": actor.name,
        "reason": REASON,
        "note": None,
    }
    events = [
        {
            **event_base,
            "kind": "payment",
            "from_status": None,
            "to_status": None,
            "data": {
                "payment_id": payment_id,
                "channel": payment_channel,
                "amount_fen": payment_amount,
            },
        },
        {
            **event_base,
            "kind": "transition",
            "from_status": S.AWAITING_PAYMENT.value,
            "to_status": S.PAID.value,
            "data": {"payment_id": payment_id},
        },
    ]
    (entry,) = audit.entry_rows(
        actor,
        "order.pay",
        "order",
        [
            audit.Change(
                entity_id=order_id,
                store_id=store_id,
                before={"status": S.AWAITING_PAYMENT.value},
                after={"status": S.PAID.value},
                label=order_no,
            )
        ],
        note=REASON,
    )
    record = {
        "channel": channel[:16],
        "account_id": account_id,
        "received_at": received_at,
        "kind": note.kind,
        "verified": True,
        "outcome": "applied",
        "reason": None,
        "notification_id": note.notification_id,
        "out_trade_no": note.out_trade_no[:64] or None,
        "out_refund_no": (note.out_refund_no or "")[:64] or None,
        "transaction_id": (note.transaction_id or "")[:64] or None,
        "status": note.status[:16],
        "amount_fen": note.amount_fen,
        "order_id": order_id,
        "payment_id": payment_id,
        "refund_id": None,
        "headers": kept_headers(headers),
        "body": body[:BODY_LIMIT].decode("utf-8", "replace"),
        "decoded": dict(note.raw),
    }
    order_params = {
        "o_id": order_id,
        "o_amount": payment_amount,
        "o_method": payment_channel,
        "o_now": now,
    }
    if session.get_bind().dialect.name == "postgresql":
        params: dict[str, Any] = dict(order_params)
        params.update({f"c0_{k}": v for k, v in record.items()})
        params.update({f"a0_{k}": v for k, v in entry.items()})
        for i, row in enumerate(events):
            params.update({f"e{i}_{k}": v for k, v in row.items()})
        await hotsql.fetch(session, _APPLY_PG, params)
    else:
        paid = (await session.execute(_PAY_ORDER, order_params)).first()
        assert paid is not None, "the order is locked and waits for this payment"
        await session.execute(insert(_events), events)
        await session.execute(insert(_audit_logs), [entry])
        await session.execute(insert(_callbacks), [record])
    lifecycle.notify_live(session)
    if member_id is not None:
        from selfmart.members import service as members  # points and tier for the member

        order = await session.get(Order, order_id)
        assert order is not None
        await members.order_changed(session, order, actor=actor)
    return remote.answer_notification(True)
