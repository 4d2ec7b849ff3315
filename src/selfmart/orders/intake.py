"""Intake: a terminal's order becomes the server's order, exactly once. THE HOT PATH.

One transaction, few round trips, SQLAlchemy Core (CONVENTIONS.md §13):
  1. price every line in one query (pricing.price);
  2. insert the header with `ON CONFLICT DO NOTHING RETURNING id` — the unique constraint on
     (terminal_id, client_order_id) makes the same order from the same terminal land once,
     however many copies race; a copy finds the first and answers with it (same body) or a
     409 (another body);
  3. insert every line in one multi-row INSERT (on PostgreSQL, in the header's statement);
  4. book the sale into the stock ledger (inventory.deduct_for_sale);
  5. insert the timeline (and any issues) in one multi-row INSERT each, and the audit entry
     (on PostgreSQL, all three in one statement).
An order refused for stock (the store does not oversell) or short on the shelf raises a
stock-short issue; a price the terminal showed differently raises a price-mismatch issue.
On PostgreSQL steps 1 to 5 run straight on the driver connection, inside the request's
transaction (kit.hotsql): SQLAlchemy's own cost per execution was a large part of an order's.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.config import get_settings
from selfmart.errors import AppError, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit import hotsql
from selfmart.kit.hotsql import HotStatement
from selfmart.kit.time import utcnow
from selfmart.members import coupons, redeem
from selfmart.members import pricing as member_pricing
from selfmart.members.exceptions import CouponUsed
from selfmart.models import AuditLog, Order, OrderEvent, OrderIssue, OrderLine
from selfmart.orders import lifecycle, pricing, receipts, stock
from selfmart.orders.exceptions import RETRYABLE_SQLSTATES, IdempotencyConflict, RetryLater
from selfmart.orders.pricing import PricedOrder
from selfmart.orders.schemas import BatchIn, OrderIn
from selfmart.orders.statemachine import OrderStatus
from selfmart.terminals.service import SignedStore

S = OrderStatus
_orders = cast(Table, Order.__table__)
_lines = cast(Table, OrderLine.__table__)
_events = cast(Table, OrderEvent.__table__)
_issues = cast(Table, OrderIssue.__table__)
_audit_logs = cast(Table, AuditLog.__table__)

#: The advisory-lock class of "a store's batch uploads" (the store id is the object). (7401,
#: a terminal's, was one batch per terminal: two terminals' batches could still deadlock.)
BATCH_LOCK = 7402
#: How far ahead of the server clock a purchase time may be (terminal clocks drift).
FUTURE_SKEW = timedelta(minutes=10)
#: The answer's warning for an order whose member came as a bare member_no (no token).
MEMBER_UNVERIFIED = "member_unverified"


@dataclass(frozen=True, slots=True)
class Terminal:
    """Who sent the order: the signed request's terminal, its store, and its actor."""

    terminal_id: int
    store: SignedStore
    actor: Actor


def request_hash(body: OrderIn) -> str:
    """The order as sent, canonically: the same order resent (online or in a batch, with keys
    in any order) hashes the same; any change to what was bought hashes differently."""
    doc = body.model_dump(mode="json", exclude_none=True)
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def new_order_no(zone: str, now: datetime) -> str:
    """The date in the store's zone and ten random digits: unguessable, and unique by the
    column's constraint (a clash, about one in 10^10 per order of the day, is drawn again)."""
    return f"{now.astimezone(ZoneInfo(zone)):%y%m%d}{secrets.randbelow(10**10):010d}"


def raise_if_retryable(exc: DBAPIError) -> None:
    """A lost lock conflict becomes a 503 the terminal resends (intake is idempotent)."""
    if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        raise RetryLater() from exc


#: The header insert elsewhere than PostgreSQL, built once: a clash on any unique key inserts
#: nothing.
_HEADER_INSERT_SQLITE = sqlite.insert(_orders).on_conflict_do_nothing().returning(_orders.c.id)
#: The columns of an order line the intake sets from pricing (the others start at 0).
_LINE_COLUMNS = (
    "line_no",
    "product_id",
    "barcode",
    "name",
    "spec",
    "list_price_fen",
    "unit_price_fen",
    "quantity",
    "discount_fen",
    "amount_fen",
    "price_source",
    "terminal_unit_price_fen",
)
_LINE_ZEROES = ("refunded_qty", "refunded_fen", "cancelled_qty", "cancelled_fen")
#: The header columns the intake sets (`_insert_header`); the others take their defaults.
_HEADER_COLUMNS = (
    "order_no",
    "store_id",
    "terminal_id",
    "client_order_id",
    "request_hash",
    "source",
    "status",
    "purchased_at",
    "created_at",
    "updated_at",
    "expires_at",
    "member_id",
    "member_no",
    "customer_name",
    "customer_phone",
    "phone_last4",
    "item_count",
    "subtotal_fen",
    "discount_fen",
    "total_fen",
    "coupon_code",
    "coupon_fen",
    "terminal_total_fen",
    "paid_fen",
    "refunded_fen",
    "stock_booked",
    "price_mismatch",
    "stock_short",
    "open_issues",
)


def _header_and_lines_pg() -> Any:
    """PostgreSQL: the header and every line in one statement (one round trip, not two). The
    lines come in as one array per column and are inserted only when the header was (a clash
    on any unique key inserts neither); the statement returns the new order's id, or nothing."""
    head = (
        postgresql.insert(_orders)
        .values({name: bindparam(name) for name in _HEADER_COLUMNS})
        .on_conflict_do_nothing()
        .returning(_orders.c.id)
        .cte("h")
    )
    arrays = (
        func.unnest(
            *(
                bindparam(f"l_{name}", type_=postgresql.ARRAY(_lines.c[name].type))
                for name in _LINE_COLUMNS
            )
        )
        .table_valued(*_LINE_COLUMNS)
        .render_derived(name="l")
    )
    lines = (
        insert(_lines)
        .from_select(
            ["order_id", *_LINE_COLUMNS, *_LINE_ZEROES],
            select(
                head.c.id,
                *(arrays.c[name] for name in _LINE_COLUMNS),
                *(literal_column("0") for _ in _LINE_ZEROES),
            ).select_from(head.join(arrays, true())),
            # the columns left out take the database's defaults (created_at: now())
            include_defaults=False,
        )
        .cte("ln")
    )
    return select(head.c.id).add_cte(lines)


_HEADER_AND_LINES_PG = HotStatement(_header_and_lines_pg())


def _rows_insert(table: Table, prefix: str, keys: tuple[str, ...], count: int) -> Any:
    """INSERT of `count` rows as SELECTs of named parameters ("{prefix}{row}_{column}"), not
    multi-row VALUES: a statement with a fixed set of named parameters, compiled once per
    shape (`_followups_statement` keeps it as a HotStatement)."""
    rows = [
        select(*(bindparam(f"{prefix}{i}_{k}", type_=table.c[k].type) for k in keys))
        for i in range(count)
    ]
    return insert(table).from_select(list(keys), rows[0] if count == 1 else union_all(*rows))


@lru_cache(maxsize=64)
def _followups_statement(
    event_keys: tuple[str, ...],
    events: int,
    issue_keys: tuple[str, ...],
    issues: int,
    audit_keys: tuple[str, ...],
) -> HotStatement:
    stmt = _rows_insert(_audit_logs, "a", audit_keys, 1)
    stmt = stmt.add_cte(_rows_insert(_events, "e", event_keys, events).cte("ev"))
    if issues:
        stmt = stmt.add_cte(_rows_insert(_issues, "i", issue_keys, issues).cte("iss"))
    return HotStatement(stmt)


def _followups_pg(
    events: list[dict[str, Any]], issues: list[dict[str, Any]], entries: list[dict[str, Any]]
) -> tuple[HotStatement, dict[str, Any]]:
    """PostgreSQL: the timeline, any issues and the audit entry as one statement (one round
    trip); the statement is built once per shape (how many events and issues)."""
    (entry,) = entries
    event_keys = tuple(events[0])
    issue_keys = tuple(issues[0]) if issues else ()
    stmt = _followups_statement(event_keys, len(events), issue_keys, len(issues), tuple(entry))
    params = {f"a0_{k}": v for k, v in entry.items()}
    for prefix, rows in (("e", events), ("i", issues)):
        for i, row in enumerate(rows):
            params.update({f"{prefix}{i}_{k}": v for k, v in row.items()})
    return stmt, params


_EXISTING = select(Order.id, Order.request_hash).where(
    Order.terminal_id == bindparam("terminal_id"),
    Order.client_order_id == bindparam("client_order_id"),
)


async def _existing(session: AsyncSession, terminal_id: int, client_order_id: str) -> Any | None:
    params = {"terminal_id": terminal_id, "client_order_id": client_order_id}
    return (await session.execute(_EXISTING, params)).first()


async def summary(session: AsyncSession, order_id: int, outcome: str) -> dict[str, Any]:
    """What the terminal is told about an order (also for a duplicate: the first answer)."""
    head = (
        await session.execute(
            select(
                Order.id,
                Order.order_no,
                Order.client_order_id,
                Order.status,
                Order.subtotal_fen,
                Order.discount_fen,
                Order.total_fen,
                Order.terminal_total_fen,
                Order.price_mismatch,
                Order.stock_short,
                Order.member_id,
                Order.member_no,
                Order.coupon_code,
                Order.coupon_fen,
            ).where(Order.id == order_id)
        )
    ).one()
    head_doc = head._asdict()
    # The number is the member's only when the server linked the order; otherwise it is the
    # terminal's unverified claim, kept on the order for a person to see.
    if head_doc.pop("member_id") is None and head_doc["member_no"] is not None:
        head_doc["member_no"] = None
        head_doc["warnings"] = [MEMBER_UNVERIFIED]
    spent = await redeem.redemption_of(session, order_id)
    head_doc["points_redeemed"] = spent["points"] if spent else 0
    head_doc["points_fen"] = spent["value_fen"] if spent else 0
    # No promotions ship: the discount is member prices, the tier's discount, the coupon
    # and points.
    head_doc["saved_fen"] = head_doc["discount_fen"] - head_doc["points_fen"]
    diffs = (
        await session.execute(
            select(
                OrderLine.line_no,
                OrderLine.product_id,
                OrderLine.terminal_unit_price_fen,
                OrderLine.unit_price_fen,
            )
            .where(
                OrderLine.order_id == order_id,
                OrderLine.terminal_unit_price_fen.is_not(None),
                OrderLine.terminal_unit_price_fen != OrderLine.unit_price_fen,
            )
            .order_by(OrderLine.line_no)
        )
    ).all()
    return _result(head_doc, [d._asdict() for d in diffs], outcome)


def _result(head: dict[str, Any], diffs: list[dict[str, Any]], outcome: str) -> dict[str, Any]:
    return {
        "order_id": head["id"],
        "order_no": head["order_no"],
        "client_order_id": head["client_order_id"],
        "status": head["status"],
        "outcome": outcome,
        "subtotal_fen": head["subtotal_fen"],
        "discount_fen": head["discount_fen"],
        "total_fen": head["total_fen"],
        "terminal_total_fen": head["terminal_total_fen"],
        "price_differences": diffs,
        "price_mismatch": head["price_mismatch"],
        "stock_short": head["stock_short"],
        "receipt_url": receipts.receipt_url(head["id"]),
        "member_no": head.get("member_no"),
        "saved_fen": head.get("saved_fen", 0),
        "points_redeemed": head.get("points_redeemed", 0),
        "points_fen": head.get("points_fen", 0),
        "coupon_code": head.get("coupon_code"),
        "coupon_fen": head.get("coupon_fen", 0),
        "warnings": head.get("warnings", []),
    }


async def accept(
    session: AsyncSession,
    term: Terminal,
    body: OrderIn,
    *,
    source: str = "terminal",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Accept one order from a terminal, once. Returns the IntakeResult fields."""
    now = now or utcnow()
    if body.purchased_at > now + FUTURE_SKEW:
        raise ValidationFailed(
            "purchased_at is in the future by the server's clock", field="purchased_at"
        )
    digest = request_hash(body)
    store = term.store
    member, checkout, spend, coupon = None, None, None, None
    coupon_base = 0  # the order's total the coupon applies to
    if body.member is not None and body.member.token is not None:
        # The server names the member (identified at this terminal), not the terminal.
        at = now if source == "terminal" else body.purchased_at
        member, checkout = await member_pricing.for_token(
            session, body.member.token, terminal_id=term.terminal_id, at=at
        )
    if body.redeem_points is not None and member is None:
        raise ValidationFailed(
            "Points can be spent only by a member identified at this terminal (member.token)",
            field="redeem_points",
        )
    if body.coupon_code is not None and member is None:
        raise ValidationFailed(
            "A coupon can be redeemed only by a member identified at this terminal (member.token)",
            field="coupon_code",
        )
    priced = await pricing.price(
        session,
        store_id=store.id,
        lines=body.lines,
        # Member prices only for a member the server identified: a bare member_no is a claim
        # anyone could type, so it is priced as a guest's (and told so: member_unverified).
        member=checkout is not None,
        terminal_total_fen=body.total_fen,
        discount_bp=checkout.discount_bp if checkout is not None else 0,
        member_prices=checkout.member_prices if checkout is not None else True,
    )
    if member is not None and (body.redeem_points is not None or body.coupon_code is not None):
        # A resend answers with the first order (whose points and coupon are spent already),
        # so look for it before checking them against what the member holds now.
        if await _existing(session, term.terminal_id, body.client_order_id) is not None:
            return await _answer_duplicate(session, term, body, digest)
        if body.coupon_code is not None:  # the coupon first, on the total after member prices
            coupon_base = priced.total_fen
            coupon = await coupons.plan_for_order(session, member.id, body.coupon_code, priced)
        if body.redeem_points is not None:  # then points, on what is left
            spend = await redeem.plan(session, member, priced, body.redeem_points, now=now)
    order_id, order_no = await _insert_header(
        session, term, body, priced, digest, source, now, checkout, coupon
    )
    if order_id is None:
        return await _answer_duplicate(session, term, body, digest)
    if coupon is not None and member is not None:
        # Two terminals redeeming the same coupon: one conditional UPDATE decides; the loser
        # is refused (409 coupon_used) and its whole order rolls back.
        won = await coupons.redeem_coupon(
            session, member_id=member.id, order_id=order_id, order_amount_fen=coupon_base,
            coupon_id=coupon.coupon_id, cap_fen=coupons.order_cap(coupon_base),
            actor=term.actor, store_id=store.id,
        )  # fmt: skip
        if won.discount_fen != coupon.discount_fen:  # changed between the check and now
            raise CouponUsed(field="coupon_code")
    if spend is not None and member is not None:
        # Two orders spending the same points: the second waits on the member's row lock,
        # then is refused (409) and its whole order rolls back.
        await redeem.spend_for_order(
            session, member, spend, order_id=order_id, order_no=order_no,
            total_fen=priced.total_fen, store_id=store.id, actor=term.actor,
            now=now,
        )  # fmt: skip

    booked = await stock.book_sale(
        session,
        store_id=store.id,
        order_id=order_id,
        lines=[(ln.product_id, ln.quantity) for ln in priced.lines],
        allow_negative=store.allow_negative_stock,
        actor=term.actor,
    )
    status = S.AWAITING_PAYMENT if booked.ok else S.OUT_OF_STOCK
    short = booked.short

    actor = term.actor
    ev_base = {
        "order_id": order_id,
        "store_id": store.id,
        "occurred_at": now,
        "actor_type": actor.kind,
        "actor_id": actor.audit_id,
        "actor_name": actor.name,
        "note": None,
    }
    events: list[dict[str, Any]] = [
        {
            **ev_base,
            "kind": "transition",
            "from_status": None,
            "to_status": S.CREATED.value,
            "reason": "received" if source == "terminal" else "received_offline",
            "data": {"client_order_id": body.client_order_id, "order_no": order_no},
        },
        {
            **ev_base,
            "kind": "transition",
            "from_status": S.CREATED.value,
            "to_status": status.value,
            "reason": "priced_and_booked" if booked.ok else "stock_refused",
            "data": {"total_fen": priced.total_fen},
        },
    ]
    issues: list[dict[str, Any]] = []
    if priced.mismatch:
        detail = {
            "terminal_total_fen": priced.terminal_total_fen,
            "total_fen": priced.total_fen,
            "lines": priced.differences,
        }
        issues.append(_issue_row(order_id, store.id, "price_mismatch", detail, now))
        events.append(
            {
                **ev_base,
                "kind": "issue",
                "reason": "issue.price_mismatch",
                "from_status": None,
                "to_status": None,
                "data": detail,
            }
        )
    if short:
        detail = {"lines": short, "refused": not booked.ok}
        issues.append(_issue_row(order_id, store.id, "stock_short", detail, now))
        events.append(
            {
                **ev_base,
                "kind": "issue",
                "reason": "issue.stock_short",
                "from_status": None,
                "to_status": None,
                "data": detail,
            }
        )
        await session.execute(
            update(_orders)
            .where(_orders.c.id == order_id)
            .values(
                status=status.value,
                stock_short=True,
                stock_booked=booked.ok,
                open_issues=len(issues),
                expires_at=None if not booked.ok else _orders.c.expires_at,
            )
        )
    entry = audit.entry_rows(
        actor,
        "order.create",
        "order",
        [
            audit.Change(
                entity_id=order_id,
                store_id=store.id,
                after={
                    "order_no": order_no,
                    "client_order_id": body.client_order_id,
                    "status": status.value,
                    "total_fen": priced.total_fen,
                    "source": source,
                },
            )
        ],
    )
    if session.get_bind().dialect.name == "postgresql":
        # The timeline, any issues and the audit entry in one statement (one round trip).
        hot, params = _followups_pg(events, issues, entry)
        await hotsql.fetch(session, hot, params)
    else:
        await session.execute(insert(_events), events)
        if issues:
            await session.execute(insert(_issues), issues)
        # One Core INSERT, not an ORM object flushed at commit: this is the hot path.
        await session.execute(insert(_audit_logs), entry)
    lifecycle.notify_live(session)
    head = {
        "id": order_id,
        "order_no": order_no,
        "client_order_id": body.client_order_id,
        "status": status.value,
        "subtotal_fen": priced.subtotal_fen,
        "discount_fen": priced.discount_fen,
        "total_fen": priced.total_fen,
        "terminal_total_fen": priced.terminal_total_fen,
        "price_mismatch": priced.mismatch,
        "stock_short": bool(short),
        "member_no": checkout.member_no if checkout is not None else None,
        "saved_fen": priced.member_saving_fen,
        "points_redeemed": spend.points if spend is not None else 0,
        "points_fen": priced.points_fen,
        "coupon_code": coupon.code if coupon is not None else None,
        "coupon_fen": priced.coupon_fen,
        "warnings": [MEMBER_UNVERIFIED] if body.member is not None and checkout is None else [],
    }
    return _result(head, priced.differences, "created")


def _issue_row(
    order_id: int, store_id: int, kind: str, detail: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "store_id": store_id,
        "kind": kind,
        "status": "open",
        "stage": "person",
        "detail": detail,
        "opened_at": now,
        "auto_attempts": 0,
        "next_auto_at": None,
    }


def _line_row(ln: Any) -> dict[str, Any]:
    return {
        "line_no": ln.line_no,
        "product_id": ln.product_id,
        "barcode": ln.barcode,
        "name": ln.name[:200],
        "spec": ln.spec[:64],
        "list_price_fen": ln.list_price_fen,
        "unit_price_fen": ln.unit_price_fen,
        "quantity": ln.quantity,
        "discount_fen": ln.discount_fen,
        "amount_fen": ln.amount_fen,
        "price_source": ln.price_source,
        "terminal_unit_price_fen": ln.terminal_unit_price_fen,
    }


async def _insert_header(
    session: AsyncSession,
    term: Terminal,
    body: OrderIn,
    priced: PricedOrder,
    digest: str,
    source: str,
    now: datetime,
    checkout: member_pricing.Checkout | None = None,
    coupon: coupons.Redemption | None = None,
) -> tuple[int | None, str]:
    """Insert the header and its lines once; (None, "") when this terminal already sent this
    order (nothing inserted). On PostgreSQL one statement does both."""
    member = body.member
    phone = member.phone.replace(" ", "").replace("-", "") if member and member.phone else None
    timeout = timedelta(minutes=get_settings().order_payment_timeout_minutes)
    values: dict[str, Any] = {
        "store_id": term.store.id,
        "terminal_id": term.terminal_id,
        "client_order_id": body.client_order_id,
        "request_hash": digest,
        "source": source,
        "status": S.AWAITING_PAYMENT.value,
        "purchased_at": body.purchased_at,
        "created_at": now,
        "updated_at": now,
        # Offline orders were sold long ago and their goods are gone: they are not closed by
        # the timer (and their stock never put back); a person or the payments settle them.
        "expires_at": now + timeout if source == "terminal" else None,
        # Linked only to a member the token names. A terminal's bare member_no (and member_id)
        # is not linked, so it earns no points and counts towards no tier: the number stays as
        # the terminal's claim, for a person to see and, if it was theirs, to settle.
        "member_id": checkout.member_id if checkout else None,
        "member_no": checkout.member_no if checkout else (member.member_no if member else None),
        "customer_name": member.name if member else None,
        "customer_phone": phone,
        "phone_last4": phone[-4:] if phone else None,
        "item_count": priced.item_count,
        "subtotal_fen": priced.subtotal_fen,
        "discount_fen": priced.discount_fen,
        "total_fen": priced.total_fen,
        "coupon_code": coupon.code if coupon is not None else None,
        "coupon_fen": coupon.discount_fen if coupon is not None else 0,
        "terminal_total_fen": priced.terminal_total_fen,
        "paid_fen": 0,
        "refunded_fen": 0,
        "stock_booked": True,
        "price_mismatch": priced.mismatch,
        "stock_short": False,
        "open_issues": 1 if priced.mismatch else 0,
    }
    lines = [_line_row(ln) for ln in priced.lines]
    pg = session.get_bind().dialect.name == "postgresql"
    if pg:  # the lines go in with the header, as one array per column
        values.update({f"l_{name}": [ln[name] for ln in lines] for name in _LINE_COLUMNS})
    for _attempt in range(5):
        order_no = new_order_no(term.store.timezone, now)
        values["order_no"] = order_no
        if pg:
            inserted = await hotsql.fetch(session, _HEADER_AND_LINES_PG, values)
            order_id = inserted[0][0] if inserted else None
        else:
            order_id = await session.scalar(_HEADER_INSERT_SQLITE, values)
        if order_id is not None:
            if not pg:
                zeroes = dict.fromkeys(_LINE_ZEROES, 0)
                rows = [{"order_id": order_id, **ln, **zeroes} for ln in lines]
                await session.execute(insert(_lines), rows)
            return int(order_id), order_no
        if await _existing(session, term.terminal_id, body.client_order_id) is not None:
            return None, ""
        # The order number clashed with another order's: draw again.
    raise AppError("Could not allocate an order number; try again")  # pragma: no cover


async def _answer_duplicate(
    session: AsyncSession, term: Terminal, body: OrderIn, digest: str
) -> dict[str, Any]:
    found = await _existing(session, term.terminal_id, body.client_order_id)
    assert found is not None
    if found.request_hash != digest:
        raise IdempotencyConflict(
            f"Client order id {body.client_order_id} was already used for a different order",
            field="client_order_id",
        )
    # Nothing changes, but a terminal resending is worth seeing in the audit log.
    await audit.record(
        session,
        term.actor,
        "order.resent",
        "order",
        int(found.id),
        store_id=term.store.id,
        note=f"client order id {body.client_order_id} sent again; answered with the first",
    )
    return await summary(session, int(found.id), "duplicate")


async def accept_batch(
    session: AsyncSession, term: Terminal, batch: BatchIn, *, now: datetime | None = None
) -> dict[str, Any]:
    """Offline orders: each in its own savepoint, so one refusal does not undo the others;
    each accepted once (a batch sent again, whole or in part, answers duplicates).

    A batch holds every lock it takes until it commits, and its orders name products in any
    order, so taking each order's stock rows as it comes (sorted within the order, not across
    the batch) deadlocked two batches, or a batch and an online order, of one store. So before
    its first order a batch locks every balance row it will touch, once, in product-id order
    (the order every sale locks in); its orders then only change rows it already holds."""
    store_id = term.store.id
    lines = [line for body in batch.orders for line in body.lines]
    try:
        if session.get_bind().dialect.name == "postgresql":
            # One batch per store at a time. The stock rows below are the locks batches share
            # today, but not all they could: rows a sale creates (a product never stocked, in
            # a store that sells past an empty shelf) do not exist to be locked beforehand,
            # and a resend racing its original would otherwise interleave their orders.
            # Batches sharing products would wait for each other on the rows anyway. (A
            # transaction-scoped advisory lock: a row lock on the store would conflict with
            # the key-share locks its orders and balances hold.)
            await session.execute(select(func.pg_advisory_xact_lock(BATCH_LOCK, store_id)))
        products = await pricing.product_ids(session, store_id=store_id, lines=lines)
        await stock.hold(
            session,
            store_id=store_id,
            product_ids=products,
            create=term.store.allow_negative_stock,
        )
    except DBAPIError as exc:
        raise_if_retryable(exc)
        raise
    results: list[dict[str, Any]] = []
    counts = {"created": 0, "duplicate": 0, "rejected": 0}
    for index, body in enumerate(batch.orders):
        try:
            async with session.begin_nested():
                result = await accept(session, term, body, source="offline", now=now)
        except DBAPIError as exc:
            raise_if_retryable(exc)
            raise
        except AppError as exc:
            counts["rejected"] += 1
            results.append(
                {
                    "index": index,
                    "client_order_id": body.client_order_id,
                    "outcome": "rejected",
                    "error": {
                        "error": exc.code,
                        "message": exc.message,
                        "details": [d.model_dump() for d in exc.details],
                    },
                }
            )
            continue
        counts[result["outcome"]] += 1
        results.append(
            {
                "index": index,
                "client_order_id": body.client_order_id,
                "outcome": result["outcome"],
                "result": result,
            }
        )
    await audit.record(
        session,
        term.actor,
        "order.batch_upload",
        "terminal",
        term.terminal_id,
        store_id=term.store.id,
        after={"orders": len(batch.orders), **counts},
    )
    return {
        "created": counts["created"],
        "duplicates": counts["duplicate"],
        "rejected": counts["rejected"],
        "results": results,
    }
