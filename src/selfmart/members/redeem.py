"""Points spent as part of an order, and given back when the order is refunded or closed.

The rule (docs/members-at-the-terminal.md): `redeem_points_per_yuan` points pay one yuan, so
points are spent in steps that pay whole fen; they pay at most `redeem_max_share_bp` of the
order's total after member prices and tier discounts, and always leave at least one fen to
pay. Their value becomes line discounts, spread over the lines in proportion to the lines'
amounts (largest remainder, ties to the earlier line), so a refund of lines gives back the
cash those lines cost and nothing more.

The redemption is a `redeem` ledger entry tied to the order, made in the order's transaction
after its row is in: two orders spending the same points at once queue on the member's row
lock and the second is refused (409 insufficient_points) with nothing of it written.

Given back, as `unredeem` entries into the lots the points came from (so their expiry stays
exact; points whose lot has expired meanwhile expire at once): all of them when the order is
closed or cancelled unpaid; when money is refunded, the share of the points that the refunded
share of the order stands for — the points kept are ceil(spent x kept money / order total),
so the member never loses a point to rounding, and a full refund gives every point back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.members import points
from selfmart.members.exceptions import InsufficientPoints, PointsNotAllowed
from selfmart.models import Member, MemberPointsEntry, MemberPointsLot, MemberProgram, Order
from selfmart.orders.pricing import PricedLine, PricedOrder, spread

ENDED = frozenset({"closed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Plan:
    points: int
    value_fen: int


def step(rules: MemberProgram) -> int:
    """The smallest number of points that pays a whole fen."""
    return rules.redeem_points_per_yuan // math.gcd(rules.redeem_points_per_yuan, 100)


def value_of(n: int, rules: MemberProgram) -> int:
    return n * 100 // rules.redeem_points_per_yuan


def cap_fen(total_fen: int, rules: MemberProgram) -> int:
    """The most an order of `total_fen` lets points pay."""
    return max(0, min(total_fen * rules.redeem_max_share_bp // 10_000, total_fen - 1))


def cap_points(total_fen: int, rules: MemberProgram) -> int:
    """The most points an order of `total_fen` takes (whole steps)."""
    most = cap_fen(total_fen, rules) * rules.redeem_points_per_yuan // 100
    return most - most % step(rules)


async def usable(session: AsyncSession, member_id: int, *, now: datetime | None = None) -> int:
    """Points the member can spend now: what is left in their unexpired lots."""
    now = now or utcnow()
    held = await session.scalar(
        select(func.coalesce(func.sum(MemberPointsLot.remaining), 0)).where(
            MemberPointsLot.member_id == member_id,
            MemberPointsLot.remaining > 0,
            MemberPointsLot.expires_at > now,
        )
    )
    return int(held or 0)


def allocate(lines: list[PricedLine], value_fen: int) -> None:
    """Spread `value_fen` over the lines as discounts, in proportion to their amounts."""
    assert 0 <= value_fen < sum(ln.amount_fen for ln in lines) or value_fen == 0
    shares = spread([ln.amount_fen for ln in lines], value_fen)
    for ln, share in zip(lines, shares, strict=True):
        ln.points_fen = share
        ln.discount_fen += share


async def plan(
    session: AsyncSession,
    member: Member,
    priced: PricedOrder,
    n: int,
    *,
    now: datetime | None = None,
) -> Plan:
    """Check that `n` points may pay for `priced` and spread their value over its lines; 422
    naming `redeem_points` when the rule forbids it, 409 when the member holds fewer."""
    rules = await points.program(session)
    unit = step(rules)
    if n <= 0 or n % unit:
        raise PointsNotAllowed(
            f"Points are spent in steps of {unit} ({rules.redeem_points_per_yuan} points pay "
            "one yuan, and only whole fen)",
            field="redeem_points",
        )
    most = cap_points(priced.total_fen, rules)
    if n > most:
        raise PointsNotAllowed(
            f"At most {most} points can be spent on this order "
            f"({rules.redeem_max_share_bp / 100:g}% of it, leaving something to pay)",
            field="redeem_points",
            max_points=most,
        )
    held = await usable(session, member.id, now=now)
    if n > held:
        raise InsufficientPoints(
            f"The member holds {held} points, fewer than {n}", field="redeem_points", balance=held
        )
    value = value_of(n, rules)
    allocate(priced.lines, value)
    return Plan(n, value)


async def spend_for_order(
    session: AsyncSession,
    member: Member,
    spend: Plan,
    *,
    order_id: int,
    order_no: str,
    total_fen: int,
    store_id: int,
    actor: Actor,
    now: datetime | None = None,
) -> MemberPointsEntry:
    """The redemption: a `redeem` entry of the order (409 insufficient_points when another
    order spent them first; the caller's transaction then rolls back)."""
    spent = await points.spend(
        session, member.id, spend.points, kind="redeem", actor=actor, order_id=order_id,
        reason=f"order {order_no}", now=now,
    )  # fmt: skip
    entry = spent.entry
    assert entry is not None
    entry.data = {**entry.data, "value_fen": spend.value_fen, "order_total_fen": total_fen}
    await session.flush()
    await audit.record(
        session, actor, "member.points_redeem", "member", member.id, store_id=store_id,
        after={"points": -spend.points, "value_fen": spend.value_fen, "order_id": order_id,
               "balance": entry.balance_after},
        label=member.member_no,
    )  # fmt: skip
    return entry


def _target(order: Order, spent: int, total_at_redeem: int) -> int | None:
    """How many of `spent` points the order should have given back by now (None: not yet)."""
    from selfmart.members.service import COUNTED, net_spend

    if order.status in ENDED:
        return spent
    if order.status not in COUNTED:
        return None
    total = total_at_redeem or order.total_fen
    if total <= 0:
        return 0
    kept = -(-spent * min(net_spend(order), total) // total)
    return spent - kept


async def settle(session: AsyncSession, order: Order, *, actor: Actor) -> int:
    """Give back what `order`'s state says is due of the points spent on it (idempotent);
    returns the points given back now."""
    if order.member_id is None:
        return 0
    rows = (
        await session.execute(
            select(MemberPointsEntry.kind, MemberPointsEntry.points, MemberPointsEntry.data)
            .where(
                MemberPointsEntry.order_id == order.id,
                MemberPointsEntry.member_id == order.member_id,
                MemberPointsEntry.kind.in_(("redeem", "unredeem")),
            )
            .order_by(MemberPointsEntry.id)
        )
    ).all()
    spent = -sum(r.points for r in rows if r.kind == "redeem")
    if spent <= 0:
        return 0
    redeemed = [r for r in rows if r.kind == "redeem"]
    total_at = int((redeemed[0].data or {}).get("order_total_fen") or 0)
    target = _target(order, spent, total_at)
    back = sum(r.points for r in rows if r.kind == "unredeem")
    if target is None or target <= back:
        return 0
    due = int(target - back)
    # Which lots the points came from, less what earlier give-backs put into them.
    taken: list[list[int]] = []
    for r in redeemed:
        taken.extend([int(lot), int(n)] for lot, n in (r.data or {}).get("lots", []))
    restored: dict[int, int] = {}
    for r in rows:
        if r.kind == "unredeem":
            for lot, n in (r.data or {}).get("lots", []):
                restored[int(lot)] = restored.get(int(lot), 0) + int(n)
    now = utcnow()
    await points.lock(session, order.member_id)
    into: list[tuple[int, int]] = []
    left = due
    for lot_id, n in reversed(taken):  # the lot taken last (expiring latest) first
        if left == 0:
            break
        free = n - restored.get(lot_id, 0)
        if free <= 0:
            restored[lot_id] -= n
            continue
        restored[lot_id] = 0
        put = min(free, left)
        lot = await session.get_one(MemberPointsLot, lot_id)
        lot.remaining += put
        into.append((lot_id, put))
        left -= put
    assert left == 0, "redemption lots out of step with the ledger"
    await session.flush()
    balance = await points._credit(session, order.member_id, due, now)
    entry = points._entry(
        order.member_id, "unredeem", due, balance, actor=actor, now=now, order_id=order.id,
        reason=f"order {order.order_no} {order.status}", data={"lots": [list(t) for t in into]},
    )  # fmt: skip
    session.add(entry)
    await session.flush()
    await points.expire_due(session, order.member_id, now=now)
    await audit.record(
        session, actor, "member.points_unredeem", "member", order.member_id,
        store_id=order.store_id, after={"points": due, "order_id": order.id},
    )  # fmt: skip
    return due


async def redemption_of(session: AsyncSession, order_id: int) -> dict[str, Any] | None:
    """The points spent on an order and given back, for the order's pages."""
    rows = (
        await session.execute(
            select(MemberPointsEntry.kind, MemberPointsEntry.points, MemberPointsEntry.data).where(
                MemberPointsEntry.order_id == order_id,
                MemberPointsEntry.kind.in_(("redeem", "unredeem")),
            )
        )
    ).all()
    if not rows:
        return None
    return {
        "points": -sum(r.points for r in rows if r.kind == "redeem"),
        "value_fen": sum(
            int((r.data or {}).get("value_fen", 0)) for r in rows if r.kind == "redeem"
        ),
        "returned": sum(r.points for r in rows if r.kind == "unredeem"),
    }
