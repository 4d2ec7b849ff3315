"""The payment callback's hot path (CONVENTIONS.md §13): the common case — a verified SUCCESS
notification of a pending attempt, for the amount we asked, of an order that waits for exactly
that money, has no open issue and no member — applied in one statement on PostgreSQL instead
of the ORM's dozen, for one callback or for many at once (group commit: payments.fastlane).

The merchant account's opened platform account is kept per process with the row it was opened
from; the signature is verified with it (`prepare`, which writes nothing), and the statement
only applies a callback if the account row is still that one (else the full path reads it
again). On PostgreSQL the statement (kit.hotsql), for each callback given:
  1. finds the payment and its order and locks the order's row (`FOR UPDATE OF orders`, the
     lock every other path takes first; the orders of a batch in id order, so locks are
     always taken in the same order) — only if the payment is pending for this amount and
     the order waits for exactly it;
  2. moves the payment out of pending (`WHERE status = 'pending'`: once, whoever races);
  3. pays the order and inserts its two timeline entries, the audit entry and the callback's
     record, each from what step 2 returned.
A callback for which step 1 or 2 finds nothing has nothing written and is reported as not
applied. As the statement is the request's (or the batch's) one write, it runs as the whole
transaction when nothing has begun one (`hotsql.fetch_alone`: one round trip, not BEGIN,
statement, COMMIT); a callback it did not apply then takes the full path in a transaction of
its own. Elsewhere (SQLite) the same steps run as separate statements in the session's
transaction, one callback at a time.

It writes what the full path (`callbacks.receive` → `attempts.settle_success` →
`orders.apply_payment`) writes for the same callback, row for row (tests compare them), and
wakes the live feed; the sales summaries follow the timeline; a member's order (points and
tier to award) takes the full path. Anything else — a refusal, a refund, a failure, an amount
that is not ours, an order already paid, closed or with an open issue, a payment no longer
pending — is not applied, nothing is written, and the full path decides.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.kit import hotsql
from selfmart.kit.context import current_ip, current_request_id
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


_KEPT_RAW = tuple(h.encode("latin-1") for h in _KEPT_HEADERS)
_KEPT_RAW_PREFIXES = tuple(p.encode("latin-1") for p in _KEPT_PREFIXES)


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    raw = getattr(headers, "raw", None)
    if raw is not None:
        # Starlette's Headers (the fast lane's): the raw pairs, only the kept ones decoded
        # (latin-1, as Headers decodes them), not every header the platform sent.
        for name, value in raw:
            low = name.lower()
            if low in _KEPT_RAW or low.startswith(_KEPT_RAW_PREFIXES):
                out[low.decode("latin-1")] = value.decode("latin-1")[:1000]
        return out
    for name, value in headers.items():
        low = name.lower()
        if low in _KEPT_HEADERS or low.startswith(_KEPT_PREFIXES):
            out[low] = value[:1000]
    return out


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

#: The audit entry's constant part (its entity is filled in by the statement).
_AUDIT_ACTION = "order.pay"
_AUDIT_CHANGE = audit.Change(
    entity_id=None, before={"status": S.AWAITING_PAYMENT.value}, after={"status": S.PAID.value}
)
#: Its changes as the statement takes them (the same for every callback: worked out once).
_AUDIT_CHANGES_JSON = json.dumps(
    audit.diff(_AUDIT_CHANGE.before, _AUDIT_CHANGE.after), ensure_ascii=False
)

# The steps one by one, for other backends: the same conditions, checked in Python.
_PAYMENT_AND_ORDER = (
    select(
        _payments.c.id,
        _payments.c.channel,
        _payments.c.amount_fen,
        _orders.c.id,
        _orders.c.order_no,
        _orders.c.store_id,
    )
    .select_from(_payments.join(_orders, _orders.c.id == _payments.c.order_id))
    .where(
        _payments.c.account_id == bindparam("account_id"),
        _payments.c.out_trade_no == bindparam("out_trade_no"),
        _payments.c.status == "pending",
        _payments.c.amount_fen == bindparam("amount_fen"),
        _orders.c.status == S.AWAITING_PAYMENT.value,
        _orders.c.paid_fen + _payments.c.amount_fen == _orders.c.total_fen,
        _orders.c.open_issues == 0,
        _orders.c.member_id.is_(None),
    )
    .with_for_update(of=_orders)
)

_SETTLE_PAYMENT = (
    update(_payments)
    .where(_payments.c.id == bindparam("p_id"), _payments.c.status == "pending")
    .values(
        status="succeeded",
        channel_txn_id=func.coalesce(
            bindparam("txn", type_=_payments.c.channel_txn_id.type), _payments.c.channel_txn_id
        ),
        succeeded_at=bindparam("succeeded_at", type_=_payments.c.succeeded_at.type),
        failure_code=None,
        failure_reason=None,
        updated_at=bindparam("now", type_=_payments.c.updated_at.type),
    )
    .returning(_payments.c.id)
)

_PAY_ORDER = (
    update(_orders)
    .where(_orders.c.id == bindparam("o_id"), _orders.c.status == S.AWAITING_PAYMENT.value)
    .values(
        paid_fen=_orders.c.paid_fen + bindparam("o_amount", type_=_orders.c.paid_fen.type),
        payment_method=bindparam("o_method", type_=_orders.c.payment_method.type),
        status=S.PAID.value,
        paid_at=bindparam("now", type_=_orders.c.paid_at.type),
        updated_at=bindparam("now", type_=_orders.c.updated_at.type),
    )
    .returning(_orders.c.id)
)


#: The per-callback values of the batch statement (PostgreSQL), sent as one JSON array of
#: one array per callback (read back by position, with these types): one parameter the driver
#: sends as it is, where one array per value had asyncpg check every item of every array in
#: Python (two ABC instance checks an item: ~45 a callback) and the headers and the decoded
#: resource each serialised on their own.
_MANY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("account_id", "int"),
    ("out_trade_no", "text"),
    ("amount_fen", "bigint"),
    ("txn", "text"),
    ("succeeded_at", "timestamptz"),
    ("channel", "text"),
    ("merchant_id", "text"),
    ("app_id", "text"),
    ("account_updated_at", "timestamptz"),
    ("key_version", "text"),
    ("actor_name", "text"),
    ("ip", "text"),
    ("request_id", "text"),
    ("received_at", "timestamptz"),
    ("notification_id", "text"),
    ("r_out_trade_no", "text"),
    ("out_refund_no", "text"),
    ("transaction_id", "text"),
    ("status", "text"),
    ("headers", "jsonb"),
    ("body", "text"),
    ("decoded", "jsonb"),
)


def _given_column(i: int, name: str, kind: str) -> str:
    if kind == "jsonb":
        return f"r->{i} AS {name}"
    if kind == "text":
        return f"r->>{i} AS {name}"
    return f"CAST(r->>{i} AS {kind}) AS {name}"


_MANY_GIVEN = ",\n    ".join(
    _given_column(i, name, kind) for i, (name, kind) in enumerate(_MANY_COLUMNS)
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


#: PostgreSQL: one callback or many (group commit, payments.fastlane) in one statement, the
#: module's steps for each, with its own conditions. The orders are locked in id order
#: (the sort is below the lock), so two batches (or a batch and any other path) cannot
#: deadlock. A callback whose payment or order is not the common case (any more) simply
#: finds nothing; the statement returns the position (`n`) of each one it applied.
_APPLY_MANY_PG = HotStatement(
    text(
        f"""
WITH given AS (
    SELECT {_MANY_GIVEN},
    n
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS e(r, n)
), target AS (
    SELECT g.*, p.id AS pid, p.channel AS pchannel, p.amount_fen AS amount, o.id AS oid,
           o.order_no AS order_no, o.store_id AS store_id
    FROM given AS g
    JOIN payments AS p ON p.account_id = g.account_id AND p.out_trade_no = g.out_trade_no
    JOIN orders AS o ON o.id = p.order_id
    JOIN payment_accounts AS a ON a.id = p.account_id
    WHERE p.status = 'pending' AND p.amount_fen = g.amount_fen
      AND o.status = 'awaiting_payment' AND o.paid_fen + p.amount_fen = o.total_fen
      AND o.open_issues = 0 AND o.member_id IS NULL
      AND a.channel = g.channel AND a.merchant_id = g.merchant_id
      AND a.app_id IS NOT DISTINCT FROM g.app_id
      AND a.updated_at IS NOT DISTINCT FROM g.account_updated_at
      AND a.key_version = g.key_version
    ORDER BY o.id
    FOR UPDATE OF o
), settled AS (
    UPDATE payments SET status = 'succeeded',
        channel_txn_id = COALESCE(target.txn, payments.channel_txn_id),
        succeeded_at = target.succeeded_at, failure_code = NULL, failure_reason = NULL,
        updated_at = :now
    FROM target
    WHERE payments.id = target.pid AND payments.status = 'pending'
    RETURNING target.*
), paid AS (
    UPDATE orders SET paid_fen = orders.paid_fen + settled.amount,
        payment_method = settled.pchannel, status = 'paid', paid_at = :now, updated_at = :now
    FROM settled
    WHERE orders.id = settled.oid AND orders.status = 'awaiting_payment'
    RETURNING orders.id
), timeline AS (
    INSERT INTO order_events (order_id, store_id, occurred_at, kind, from_status, to_status,
        actor_type, actor_id, actor_name, reason, note, data)
    SELECT oid, store_id, :now, 'payment', NULL, NULL, :actor_type, NULL, actor_name,
        :reason, NULL,
        jsonb_build_object('payment_id', pid, 'channel', pchannel, 'amount_fen', amount)
    FROM settled
    UNION ALL
    SELECT oid, store_id, :now, 'transition', 'awaiting_payment', 'paid', :actor_type, NULL,
        actor_name, :reason, NULL, jsonb_build_object('payment_id', pid)
    FROM settled
), audited AS (
    INSERT INTO audit_logs (occurred_at, actor_type, actor_id, actor_name, action,
        entity_type, entity_id, entity_label, store_id, changes, note, ip, request_id)
    SELECT :now, :actor_type, NULL, actor_name, '{_AUDIT_ACTION}', 'order', oid::text,
        order_no, store_id, CAST(:changes AS jsonb), :reason, ip, request_id
    FROM settled
), recorded AS (
    INSERT INTO payment_callbacks (channel, account_id, received_at, kind, verified, outcome,
        reason, notification_id, out_trade_no, out_refund_no, transaction_id, status,
        amount_fen, order_id, payment_id, refund_id, headers, body, decoded)
    SELECT channel, account_id, received_at, 'payment', true, 'applied', NULL,
        notification_id, r_out_trade_no, out_refund_no, transaction_id, status, amount_fen,
        oid, pid, NULL, headers, body, decoded
    FROM settled
)
SELECT n FROM settled
"""
    )
)


async def apply_many(session: AsyncSession, items: list[Prepared]) -> list[bool]:
    """Apply prepared callbacks together: on PostgreSQL in one statement, as the whole of the
    session's transaction when nothing has begun it (`hotsql.fetch_alone`); elsewhere one by
    one in the session's transaction. Whether each was applied (those not applied wrote
    nothing; the full path decides them). Two items for the same payment must not be in one
    call (the caller keeps the second for after)."""
    if not items:
        return []
    if session.get_bind().dialect.name != "postgresql":
        return [await _apply_in_steps(session, item) for item in items]
    now = utcnow()
    first = items[0]
    rows: list[tuple[Any, ...]] = []
    for item in items:
        p, r, o = item.params, item.record, item.opened
        rows.append((
            item.account_id, item.out_trade_no, p["amount_fen"], p["txn"],
            p["succeeded_at"].isoformat(), o.channel, o.merchant_id, o.app_id,
            _iso(o.updated_at), o.key_version, item.actor.name, item.ip, item.request_id,
            r["received_at"].isoformat(), r["notification_id"], r["out_trade_no"],
            r["out_refund_no"], r["transaction_id"], r["status"], r["headers"], r["body"],
            r["decoded"],
        ))  # fmt: skip
    params: dict[str, Any] = {
        "rows": json.dumps(rows, ensure_ascii=False),
        "now": now,
        "actor_type": first.actor.kind,
        "reason": REASON,
        "changes": _AUDIT_CHANGES_JSON,
    }
    found = await hotsql.fetch_alone(session, _APPLY_MANY_PG, params)
    done = {int(r[0]) for r in found}
    return [i + 1 in done for i in range(len(items))]


# --- opened platform accounts ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Opened:
    """An account row as it was when its platform account was opened."""

    channel: str
    merchant_id: str
    app_id: str | None
    updated_at: datetime | None
    key_version: str
    remote: PlatformAccount


#: account id -> its opened platform account. The statement that applies a callback checks the
#: row is still the one it was opened from (keys rotated or ids edited change `updated_at`), so
#: a stale entry never applies anything: the full path reads the row again, and this is renewed.
_OPENED: OrderedDict[int, _Opened] = OrderedDict()
_OPENED_MAX = 64


async def _opened(session: AsyncSession, account_id: int, *, checked: bool) -> _Opened | None:
    """The account's opened platform account. `checked`: the caller's statement checks the row
    is still the one it was opened from; otherwise the row is read and compared here."""
    opened = _OPENED.get(account_id)
    if opened is not None and checked:
        return opened
    if account_id > 2**31 - 1:
        return None
    row = (await hotsql.fetch(session, _ACCOUNT, {"account_id": account_id})) or None
    if row is None:
        return None
    channel, merchant_id, app_id, updated_at, key_version = row[0]
    if opened is not None and (
        opened.channel,
        opened.merchant_id,
        opened.app_id,
        opened.updated_at,
        opened.key_version,
    ) == (channel, merchant_id, app_id, updated_at, key_version):
        return opened
    account = await session.get(PaymentAccount, account_id)
    if account is None:
        return None
    return _open(account)


def _identity(account: PaymentAccount) -> tuple[str, str, str | None, datetime | None, str]:
    return (
        account.channel,
        account.merchant_id,
        account.app_id,
        account.updated_at,
        account.key_version,
    )


def _open(account: PaymentAccount) -> _Opened:
    channel, merchant_id, app_id, updated_at, key_version = _identity(account)
    opened = _Opened(
        channel=channel,
        merchant_id=merchant_id,
        app_id=app_id,
        updated_at=updated_at,
        key_version=key_version,
        remote=accounts.open_platform(account),
    )
    _OPENED[account.id] = opened
    while len(_OPENED) > _OPENED_MAX:
        _OPENED.popitem(last=False)
    return opened


def opened_for(account: PaymentAccount) -> PlatformAccount:
    """The platform account of `account` as its row is now (the full path, which has read the
    row): the one this process keeps if it was opened from this very row, else opened afresh
    and kept in its place. This is where a kept account that became stale (settings saved,
    keys rotated: `updated_at`, `key_version`) is replaced; a callback that was merely not
    the common case (a duplicate, a refund, a mismatch) finds it current and keeps it."""
    opened = _OPENED.get(account.id)
    if opened is None or (
        opened.channel,
        opened.merchant_id,
        opened.app_id,
        opened.updated_at,
        opened.key_version,
    ) != _identity(account):
        opened = _open(account)
    return opened.remote


# --- the hot path ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """A verified common-case callback, ready to apply: the statement's parameters, the
    callback's record, and what of its audit entry the request's context gives (its address
    and id: the callback is applied in a batch, outside that context)."""

    account_id: int
    out_trade_no: str
    params: dict[str, Any]
    record: dict[str, Any]
    ip: str | None
    request_id: str | None
    actor: Actor
    opened: _Opened


async def prepare(
    session: AsyncSession,
    *,
    channel: str,
    account_id: int,
    headers: Mapping[str, str],
    body: bytes,
) -> Prepared | None:
    """Verify one callback and, if it is the common case, what applying it writes; else None.
    Writes nothing. (On PostgreSQL the opened account is taken from this process's cache and
    the statement checks the account row is still that one.)"""
    received_at = utcnow()
    one_statement = session.get_bind().dialect.name == "postgresql"
    opened = await _opened(session, account_id, checked=one_statement)
    return verify(opened, channel, account_id, headers, body, received_at=received_at)


def cached(account_id: int) -> _Opened | None:
    """The account's opened platform account if this process has it (PostgreSQL only: the
    statement checks the row is still the one it was opened from)."""
    return _OPENED.get(account_id)


def verify(
    opened: _Opened | None,
    channel: str,
    account_id: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    received_at: datetime | None = None,
) -> Prepared | None:
    """`prepare` once the opened account is known: no database."""
    received_at = received_at or utcnow()
    if opened is None or opened.channel != channel:
        return None
    try:
        note = opened.remote.parse_notification(headers, body)
    except NotificationRejected:
        return None
    if (
        note.kind != "payment"
        or note.status != "succeeded"
        or not note.out_trade_no
        or note.merchant_id != opened.merchant_id
        or (opened.app_id and note.app_id and note.app_id != opened.app_id)
    ):
        return None
    now = utcnow()
    actor = callback_actor(channel)
    params: dict[str, Any] = {
        "account_id": account_id,
        "out_trade_no": note.out_trade_no,
        "amount_fen": note.amount_fen,
        "txn": note.transaction_id or None,
        "succeeded_at": note.occurred_at or now,
        "now": now,
    }
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
        "refund_id": None,
        "headers": kept_headers(headers),
        "body": body[:BODY_LIMIT].decode("utf-8", "replace"),
        "decoded": dict(note.raw),
    }
    return Prepared(
        account_id,
        note.out_trade_no,
        params,
        record,
        current_ip(),
        current_request_id(),
        actor,
        opened,
    )


async def try_apply(
    session: AsyncSession,
    *,
    channel: str,
    account_id: int,
    headers: Mapping[str, str],
    body: bytes,
) -> NotificationAnswer | None:
    """Apply one callback if it is the common case; else None, having written nothing."""
    item = await prepare(
        session, channel=channel, account_id=account_id, headers=headers, body=body
    )
    if item is None:
        return None
    if not (await apply_many(session, [item]))[0]:
        return None  # (the full path reads the account row: `opened_for` renews a stale one)
    lifecycle.notify_live(session)
    return item.opened.remote.answer_notification(True)


def forget(account_id: int) -> None:
    """The account is gone (or no longer of the callback's channel): forget it."""
    _OPENED.pop(account_id, None)


async def _apply_in_steps(session: AsyncSession, item: Prepared) -> bool:
    """The statement's steps one by one (backends without data-modifying CTEs)."""
    params, record, actor = item.params, item.record, item.actor
    found = (await session.execute(_PAYMENT_AND_ORDER, params)).first()
    if found is None:
        return False
    payment_id, payment_channel, amount, order_id, order_no, store_id = found
    settled = await session.execute(_SETTLE_PAYMENT, {**params, "p_id": payment_id})
    if settled.first() is None:
        return False  # no longer pending (the order's lock is held; nothing written)
    order_params = {"o_id": order_id, "o_amount": amount, "o_method": payment_channel}
    paid = (await session.execute(_PAY_ORDER, {**order_params, "now": params["now"]})).first()
    assert paid is not None, "the order is locked and waits for this payment"
    base = {
        "order_id": order_id,
        "store_id": store_id,
        "occurred_at": params["now"],
        "actor_type": actor.kind,
        "actor_id": actor.audit_id,
        "actor_name": actor.name,
        "reason": REASON,
        "note": None,
    }
    events = [
        {
            **base,
            "kind": "payment",
            "from_status": None,
            "to_status": None,
            "data": {"payment_id": payment_id, "channel": payment_channel, "amount_fen": amount},
        },
        {
            **base,
            "kind": "transition",
            "from_status": S.AWAITING_PAYMENT.value,
            "to_status": S.PAID.value,
            "data": {"payment_id": payment_id},
        },
    ]
    await session.execute(insert(_events), events)
    entry = {
        **audit.entry_rows(actor, _AUDIT_ACTION, "order", [_AUDIT_CHANGE], note=REASON)[0],
        "ip": item.ip,
        "request_id": item.request_id,
        "entity_id": str(order_id),
        "entity_label": order_no,
        "store_id": store_id,
    }
    await session.execute(insert(_audit_logs), [entry])
    await session.execute(
        insert(_callbacks), [{**record, "order_id": order_id, "payment_id": payment_id}]
    )
    return True
