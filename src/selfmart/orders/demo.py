"""Demo orders for `make run`: a month of sales at every demo terminal, made through the
orders services (intake, payments, completion, refunds, cancellation, the close-unpaid job)
with the clock pinned to when each step happened, so the stock ledger, the timelines and the
audit trail agree with each other. Customers pay at the terminal by WeChat Pay, Alipay or card
through our payment sandboxes (`payments.demo`), so every payment and refund is one the
sandbox knows; without sandboxes, payments are recorded on the manual channel. Most orders are
completed; some were refunded in full or in part, cancelled or closed unpaid; and a handful of
recent ones are still abnormal, so the console's queue has work. Deterministic; a second run
adds nothing and removes nothing."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import SYSTEM, Actor, job_actor
from selfmart.inventory import service as inventory
from selfmart.kit.time import clock_at, utcnow
from selfmart.models import Order, OrderLine, Store, Terminal, User
from selfmart.orders import intake, productsync, refunds, service
from selfmart.orders.schemas import (
    IntakeLine,
    ManualPaymentBody,
    MemberIn,
    OrderIn,
    RefundBody,
    RefundLineIn,
)
from selfmart.terminals import service as terminals
from selfmart.terminals.service import SignedStore

if TYPE_CHECKING:
    from selfmart.payments.demo import SandboxPayer

log = logging.getLogger(__name__)

#: Days of history, and orders per terminal per day (inclusive range).
HISTORY_DAYS = 30
ORDERS_PER_DAY = (1, 2)
CLIENT_PREFIX = "demo-"
#: The newest demo sale is at least this old, so every payment timer it started has run out.
RECENT_GAP = timedelta(minutes=30)

#: Regular customers: (member no., name, phone).
MEMBERS = [
    (f"M2026{n:04d}", name, f"13{(n * 7919) % 10**9:09d}")
    for n, name in enumerate(
        [
            "张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄涛", "周杰", "吴婷",
            "徐明", "孙丽", "马超", "朱琳", "胡斌", "郭颖", "何伟", "高峰", "林晓", "罗雪",
        ],
        start=1,
    )
]  # fmt: skip

REFUND_REASONS = ["商品破损", "临期商品", "顾客重复扫码", "口味不合适，未开封", "包装漏气"]
CANCEL_REASONS = ["顾客放弃购买", "顾客忘带手机，未付款离开", "终端误操作，顾客重新下单"]


@dataclass(frozen=True, slots=True)
class _Item:
    product_id: int
    barcode: str
    price_fen: int


@dataclass
class _Staff:
    cashier: Actor
    admin: Actor


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join(map(str, parts)))


async def _staff(session: AsyncSession) -> _Staff:
    """The demo's cashier and admin as actors (the system when they are missing)."""
    from selfmart.iam.dependencies import load_actor

    found: dict[str, Actor] = {}
    for name in ("cashier", "admin"):
        user = await session.scalar(select(User).where(User.username == name))
        if user is not None:
            actor = await load_actor(session, user, None)
            # Demo history is not held back by store scoping or a cashier's refund limit.
            found[name] = Actor(
                kind=actor.kind,
                id=actor.id,
                name=actor.name,
                permissions=actor.permissions,
                store_ids=None,
            )
    return _Staff(cashier=found.get("cashier", SYSTEM), admin=found.get("admin", SYSTEM))


async def _sellable(session: AsyncSession, store: Store) -> list[_Item]:
    """What the store's terminals sell, as they download it."""
    sync = await productsync.sync(session, store_id=store.id, since=None)
    return [
        _Item(p["product_id"], p["barcodes"][0], p["price_fen"])
        for p in sync["items"]
        if p["barcodes"]
    ]


def _moments(store: Store, terminal: Terminal, now: datetime) -> list[datetime]:
    """When this terminal's demo customers bought, oldest first: shop hours in the store's zone."""
    zone = ZoneInfo(store.timezone)
    r = _rng("moments", terminal.code)
    today = now.astimezone(zone).date()
    out: list[datetime] = []
    for back in range(HISTORY_DAYS, -1, -1):
        day = today - timedelta(days=back)
        for _ in range(r.randint(*ORDERS_PER_DAY)):
            local = datetime.combine(day, time(7), tzinfo=zone) + timedelta(
                seconds=r.randint(0, 15 * 3600)
            )
            at = local.astimezone(now.tzinfo)
            # The last hours are filled below, at today's pace.
            if at < now - timedelta(hours=8):
                out.append(at)
    # Today so far: a steady trickle of sales up to half an hour ago (a later order's payment
    # timer would still be running), so the few abnormal orders sit among ordinary ones and
    # the console opens on a day that looks like any other.
    at = now - timedelta(hours=8)
    while True:
        at += timedelta(minutes=r.randint(25, 55))
        if at > now - RECENT_GAP:
            break
        out.append(at)
    return sorted(out)


def _basket(r: random.Random, items: Sequence[_Item], stock: dict[int, int]) -> list[_Item]:
    roomy = [i for i in items if stock.get(i.product_id, 0) >= 8]
    return r.sample(roomy, k=min(len(roomy), r.choice([1, 1, 2, 2, 3, 4])))


async def _lines_of(session: AsyncSession, order_id: int) -> list[OrderLine]:
    return list(
        (
            await session.scalars(
                select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no)
            )
        ).all()
    )


async def _order(session: AsyncSession, order_id: int) -> Order:
    order = await session.get_one(Order, order_id)
    await session.refresh(order)
    return order


async def _take(
    session: AsyncSession,
    term: intake.Terminal,
    body: OrderIn,
    at: datetime,
    *,
    source: str = "terminal",
) -> Order:
    with clock_at(at):
        result = await intake.accept(session, term, body, source=source, now=at)
    return await _order(session, int(result["order_id"]))


async def _pay(
    session: AsyncSession,
    order: Order,
    at: datetime,
    actor: Actor,
    amount_fen: int | None = None,
    *,
    payer: SandboxPayer | None = None,
    terminal: Actor | None = None,
) -> None:
    """The order paid at `at`: at its terminal through a sandbox when there is a `payer` (the
    customer's channel drawn from the terminal's order id), else booked on the manual channel by
    `actor` (and always so for an `amount_fen` other than what is owed: no platform charges
    that)."""
    if payer is not None and terminal is not None and amount_fen is None:
        channel = payer.channel_for(_rng("channel", order.client_order_id))
        with clock_at(at):
            state = await payer.pay(session, order, channel, terminal)
        if state == "paid":
            await session.refresh(order)
            return
        log.warning("demo order %s: %s payment %s", order.order_no, channel, state)
    with clock_at(at):
        await service.record_manual_payment(
            session,
            order,
            ManualPaymentBody(amount_fen=amount_fen, note="自助收银台扫码付款（手工渠道记账）"),
            actor=actor,
        )


def _member(pick: int | None, member_ids: Sequence[int], terminal_id: int) -> MemberIn | None:
    """The regular the customer is, identified as a terminal does it (a member token) when the
    demo's members exist, else by number as an older terminal sends it."""
    if pick is None:
        return None
    if member_ids:
        from selfmart.members import identify

        # Some regulars come far more often than others (and a few not at all this month),
        # so the tiers have members at every level.
        n = len(member_ids)
        member_id = member_ids[(pick % n) ** 2 // n]
        return MemberIn(token=identify.member_token(member_id, terminal_id))
    number, name, phone = MEMBERS[pick]
    return MemberIn(member_no=number, name=name, phone=phone)


async def _history_order(
    session: AsyncSession,
    term: intake.Terminal,
    staff: _Staff,
    seq: int,
    at: datetime,
    items: Sequence[_Item],
    stock: dict[int, int],
    payer: SandboxPayer | None = None,
    member_ids: Sequence[int] = (),
) -> str:
    """One past order and what became of it; returns its outcome."""
    r = _rng("order", term.terminal_id, seq)
    basket = _basket(r, items, stock)
    if not basket:
        return "skipped"
    pick = r.randrange(len(MEMBERS)) if r.random() < 0.35 else None
    body = OrderIn(
        client_order_id=f"{CLIENT_PREFIX}{term.actor.name}-{seq:04d}",
        purchased_at=at - timedelta(seconds=r.randint(20, 90)),
        lines=[IntakeLine(barcode=i.barcode, quantity=r.choice([1, 1, 1, 2, 3])) for i in basket],
        member=_member(pick, member_ids, term.terminal_id),
    )
    for line in body.lines:
        item = next(i for i in basket if i.barcode == line.barcode)
        stock[item.product_id] -= line.quantity
    order = await _take(session, term, body, at)
    roll = r.random()
    if roll < 0.04:
        with clock_at(at + timedelta(minutes=r.randint(3, 9))):
            await service.cancel(session, order, reason=r.choice(CANCEL_REASONS), actor=staff.admin)
        _put_back(stock, body, basket)
        return "cancelled"
    if roll < 0.07:
        expires = order.expires_at or at
        with clock_at(expires + timedelta(seconds=30)):
            await service.close_expired(
                session, actor=job_actor("close_unpaid"), now=expires + timedelta(seconds=30)
            )
        _put_back(stock, body, basket)
        return "closed"
    paid_at = at + timedelta(seconds=r.randint(15, 60))
    await _pay(session, order, paid_at, staff.cashier, payer=payer, terminal=term.actor)
    if at > utcnow() - timedelta(hours=30) and roll > 0.9:
        return "paid"  # not yet settled
    with clock_at(at + timedelta(minutes=r.randint(2, 20))):
        await service.complete(session, order, note=None, actor=staff.cashier)
    if roll < 0.16:
        later = at + timedelta(hours=r.randint(2, 60))
        if later > utcnow() - timedelta(hours=1):  # a recent sale: returned the same day
            later = at + (utcnow() - at) / 3
        lines = await _lines_of(session, order.id)
        disposition = "restock" if r.random() < 0.6 else "write_off"
        if roll < 0.11:
            refund = RefundBody(full=True, disposition=disposition, reason=r.choice(REFUND_REASONS))
        else:
            returned = r.choice(lines)
            refund = RefundBody(
                lines=[RefundLineIn(line_id=returned.id, quantity=1, disposition=disposition)],
                reason=r.choice(REFUND_REASONS),
            )
        with clock_at(later):
            await refunds.refund(session, order, refund, actor=staff.admin)
            if payer is not None:
                await payer.settle_refunds(session, order.id, staff.admin)
        return "refunded" if roll < 0.11 else "partially_refunded"
    return "completed"


def _put_back(stock: dict[int, int], body: OrderIn, basket: Sequence[_Item]) -> None:
    for line in body.lines:
        item = next(i for i in basket if i.barcode == line.barcode)
        stock[item.product_id] += line.quantity


async def _abnormal_orders(
    session: AsyncSession,
    term: intake.Terminal,
    staff: _Staff,
    kinds: Sequence[str],
    items: Sequence[_Item],
    stock: dict[int, int],
    payer: SandboxPayer | None = None,
) -> None:
    """Recent orders that still need a person: one per kind named."""
    now = utcnow()
    for n, kind in enumerate(kinds):
        r = _rng("abnormal", term.terminal_id, kind)
        at = now - timedelta(hours=r.randint(1, 6), minutes=r.randint(0, 59))
        basket = _basket(r, items, stock)[:2] or list(items[:1])
        lines = [IntakeLine(barcode=i.barcode, quantity=1) for i in basket]
        client_id = f"{CLIENT_PREFIX}{term.actor.name}-x{n}"
        if kind == "payment_failed":
            # Sent offline (no payment timer): it waits in the queue until someone acts.
            body = OrderIn(client_order_id=client_id, purchased_at=at, lines=lines)
            order = await _take(session, term, body, at, source="offline")
            with clock_at(at + timedelta(minutes=1)):
                await service.mark_payment_failed(
                    session, order, actor=staff.cashier, reason="customer_cancelled_payment"
                )
        elif kind == "stock_short":
            # The shelf, by the ledger, holds fewer than the customer took. Counted from the
            # ledger itself: `stock` follows sales and cancellations but not refunds that put
            # units back on the shelf, so it can be short of what the shelf holds.
            held = await inventory.balances(session, term.store.id, [i.product_id for i in items])
            low = min(
                (i for i in items if held.get(i.product_id, 0) > 0),
                key=lambda i: (held[i.product_id], i.product_id),
            )
            want = held[low.product_id] + 2
            stock[low.product_id] = held[low.product_id] - want
            body = OrderIn(
                client_order_id=client_id,
                purchased_at=at,
                lines=[IntakeLine(barcode=low.barcode, quantity=want)],
            )
            await _take(session, term, body, at, source="offline")
        elif kind == "price_mismatch":
            # The terminal showed an old, lower price; the customer paid the server's.
            item = basket[0]
            shown = max(1, item.price_fen - 100)
            body = OrderIn(
                client_order_id=client_id,
                purchased_at=at,
                lines=[IntakeLine(barcode=item.barcode, quantity=1, unit_price_fen=shown)],
                total_fen=shown,
            )
            order = await _take(session, term, body, at)
            await _pay(
                session, order, at + timedelta(seconds=40), staff.cashier,
                payer=payer, terminal=term.actor,
            )  # fmt: skip
        elif kind == "amount_mismatch":
            # Two yuan more was booked than the order's total.
            body = OrderIn(client_order_id=client_id, purchased_at=at, lines=lines)
            order = await _take(session, term, body, at)
            await _pay(
                session, order, at + timedelta(seconds=40), staff.cashier, order.total_fen + 200
            )


async def _activate(session: AsyncSession, terminal: Terminal, actor: Actor, at: datetime) -> None:
    """The terminal was set up the day before its first sale: a one-time code issued in the
    console and exchanged by the device for its key, as terminals.service does it."""
    # the terminal's object may have been let go with the previous terminal's orders
    terminal = await session.get_one(Terminal, terminal.id)
    with clock_at(at):
        issued = await terminals.issue_activation_code(session, terminal, actor=actor, now=at)
        await terminals.activate(session, terminal.code, issued.activation_code, now=at)


async def _seen(
    session: AsyncSession, terminal_id: int, code: str, store_code: str, now: datetime
) -> None:
    """A terminal that sells is switched on: its last heartbeat came a moment ago, from the
    store's network, with the app version it runs (telemetry, as a heartbeat writes it)."""
    r = _rng("seen", code)
    await session.execute(
        update(Terminal)
        .where(Terminal.id == terminal_id)
        .values(
            last_seen_at=now - timedelta(seconds=r.randint(5, 50)),
            app_version="2.4.1",
            last_ip=f"10.{sum(map(ord, store_code)) % 200}.0.{r.randint(11, 60)}",
        )
    )


#: The open abnormal orders each demo terminal leaves in the queue.
ABNORMAL: dict[str, tuple[str, ...]] = {
    "T-SH001-01": ("payment_failed", "price_mismatch"),
    # One shelf deliberately short: the demo's only negative stock.
    "T-SH001-02": ("stock_short",),
    "T-SH002-01": ("payment_failed", "amount_mismatch"),
    "T-HZ001-01": ("payment_failed",),
    "T-HZ001-02": ("price_mismatch",),
}


async def seed_orders(
    session: AsyncSession, stores: Sequence[Store], *, payer: SandboxPayer | None = None
) -> dict[str, int]:
    """A month of orders at every terminal of `stores` that has none from the demo yet, paid
    through `payer`'s sandboxes (else on the manual channel).

    Returns how many orders ended in each outcome (empty when everything was already there)."""
    staff = await _staff(session)
    from selfmart.members.demo import demo_member_ids

    member_ids = await demo_member_ids(session)
    outcomes: dict[str, int] = {}
    kept = {id(o) for o in session.identity_map.values()}
    now = utcnow()
    for store in stores:
        terminals = (
            await session.scalars(
                select(Terminal).where(Terminal.store_id == store.id).order_by(Terminal.code)
            )
        ).all()
        items = await _sellable(session, store)
        if not items or not terminals:
            continue
        stock = await inventory.balances(session, store.id, [i.product_id for i in items])
        for terminal in terminals:
            seeded = await session.scalar(
                select(Order.id)
                .where(
                    Order.terminal_id == terminal.id,
                    Order.client_order_id.like(f"{CLIENT_PREFIX}%"),
                )
                .limit(1)
            )
            if seeded is not None:
                continue
            moments = _moments(store, terminal, now)
            if terminal.status == "pending" and moments:
                await _activate(session, terminal, staff.admin, moments[0] - timedelta(days=1))
            term = intake.Terminal(
                terminal_id=terminal.id,
                store=SignedStore(
                    id=store.id,
                    code=store.code,
                    timezone=store.timezone,
                    allow_negative_stock=store.allow_negative_stock,
                ),
                actor=Actor(
                    kind="terminal",
                    id=terminal.id,
                    name=terminal.code,
                    store_ids=frozenset({store.id}),
                ),
            )
            for seq, at in enumerate(moments):
                outcome = await _history_order(
                    session, term, staff, seq, at, items, stock, payer, member_ids
                )
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                # Thousands of rows pass through here, and every flush walks what the session
                # holds: let go of each order once it is written (what the caller holds stays).
                await session.flush()
                for obj in [o for o in session.identity_map.values() if id(o) not in kept]:
                    session.expunge(obj)
            kinds = ABNORMAL.get(terminal.code, ())
            await _abnormal_orders(session, term, staff, kinds, items, stock, payer)
            await _seen(session, terminal.id, terminal.code, store.code, now)
            outcomes["abnormal"] = outcomes.get("abnormal", 0) + len(kinds)
    await session.flush()
    log.info("demo orders: %s", summary(outcomes))
    return outcomes


def summary(outcomes: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "none new"
