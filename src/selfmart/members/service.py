"""The members domain's entry points for other domains and the routes: what an order's money
means for its member (points earned or reversed, tier moved), and points by hand.

`order_changed` is the one call the orders domain makes, in its transaction, whenever an
order becomes paid or has money refunded. It is idempotent: it brings the member's record of
the order (net spend, points earned) up to what the order says now, so calling it twice, or
from several refund paths, changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.members import points, tiers
from selfmart.members.exceptions import MemberInactive
from selfmart.models import Member, MemberOrder, MemberPointsEntry, MemberTier, Order
from selfmart.orders import customers as orders

#: Order statuses in which the money paid (less refunds) counts as spend.
COUNTED = frozenset({"paid", "completed", "refund_requested", "partially_refunded", "refunded"})


def net_spend(order: Order) -> int:
    """What the customer paid and kept paid: never above the total (an overpayment given
    back is not spend), never below zero."""
    if order.status not in COUNTED:
        return 0
    return max(0, min(order.total_fen, order.paid_fen - order.refunded_fen))


def points_for(net_fen: int, rate_pct: int) -> int:
    """Points for `net_fen` at `rate_pct` (points per yuan x 100), rounded down."""
    return net_fen * rate_pct // 10_000


async def order_changed(session: AsyncSession, order: Order, *, actor: Actor) -> None:
    """Bring the member's points and tier up to date with `order`'s money (see the module)."""
    if order.member_id is None:
        return
    member = await _counted_member(session, order.member_id)
    if member is None:  # a member id the terminal sent that names no member
        return
    if member.id != order.member_id:  # linked to a record merged since: the survivor's now
        orders.relink(order, member_id=member.id, member_no=member.member_no)

    from selfmart.members import coupons, redeem  # given back on refunds

    await redeem.settle(session, order, actor=actor)
    await coupons.settle_order(session, order, actor=actor)
    record = await session.scalar(select(MemberOrder).where(MemberOrder.order_id == order.id))
    net = net_spend(order)
    now = utcnow()
    if record is None:
        if net == 0 or member.status != "active":
            return
        rules = await points.program(session)
        tier = await session.get(MemberTier, member.tier_id) if member.tier_id else None
        multiplier = tier.points_multiplier_pct if tier is not None else 100
        record = MemberOrder(
            member_id=member.id,
            order_id=order.id,
            store_id=order.store_id,
            paid_at=order.paid_at or now,
            net_fen=0,
            rate_pct=rules.points_per_yuan * multiplier,
            points_earned=0,
            updated_at=now,
        )
        session.add(record)
        await session.flush()
    if net == record.net_fen:
        return
    went_down = net < record.net_fen
    target = points_for(net, record.rate_pct)
    delta = target - record.points_earned
    record.net_fen = net
    record.points_earned = target
    record.updated_at = now
    await session.flush()
    if delta > 0:
        await points.award(
            session, member.id, delta, kind="earn", actor=actor, order_id=order.id,
            reason=f"order {order.order_no}",
        )  # fmt: skip
    elif delta < 0:
        await points.reverse(
            session, member.id, -delta, order_id=order.id, actor=actor,
            reason=f"refund of order {order.order_no}",
        )  # fmt: skip
    if member.status == "active":
        await tiers.evaluate(
            session,
            member,
            reason="refund" if went_down else "order_paid",
            allow_down=went_down,
            actor=actor,
            order_id=order.id,
        )


async def _counted_member(session: AsyncSession, member_id: int) -> Member | None:
    """The member an order counts for, under their lock: the order's member, or the one it
    was merged into. Locking before reading means a merge running now has either finished
    (and the survivor is found) or waits until this order is counted (and moves it)."""
    seen: set[int] = set()
    while member_id not in seen:
        seen.add(member_id)
        found = await session.scalar(
            select(Member.id).where(Member.id == member_id).with_for_update()
        )
        if found is None:
            return None
        member = await session.get(Member, member_id, populate_existing=True)
        if member is None or member.status != "merged" or member.merged_into_id is None:
            return member
        member_id = member.merged_into_id
    return None


def _active(member: Member) -> None:
    if member.status != "active":
        raise MemberInactive(field="member_id")


async def adjust(
    session: AsyncSession, member: Member, amount: int, *, reason: str, actor: Actor
) -> MemberPointsEntry:
    """Points added or taken by hand, with a reason; never below zero."""
    _active(member)
    if amount > 0:
        entry = await points.award(session, member.id, amount, kind="adjust", actor=actor,
                                   reason=reason)  # fmt: skip
    else:
        spent = await points.spend(session, member.id, -amount, kind="adjust", actor=actor,
                                   reason=reason)  # fmt: skip
        assert spent.entry is not None
        entry = spent.entry
    await audit.record(
        session, actor, "member.points_adjust", "member", member.id,
        after={"points": amount, "balance": entry.balance_after}, note=reason,
        label=member.member_no,
    )  # fmt: skip
    return entry


async def redeem(
    session: AsyncSession,
    member: Member,
    amount: int,
    *,
    reason: str | None,
    order_id: int | None,
    actor: Actor,
) -> MemberPointsEntry:
    """Spend points (oldest unexpired award first), or 409 insufficient_points."""
    _active(member)
    spent = await points.spend(
        session, member.id, amount, kind="redeem", actor=actor, order_id=order_id,
        reason=reason,
    )  # fmt: skip
    assert spent.entry is not None
    await audit.record(
        session, actor, "member.points_redeem", "member", member.id,
        after={"points": -amount, "balance": spent.entry.balance_after, "order_id": order_id},
        note=reason, label=member.member_no,
    )  # fmt: skip
    return spent.entry


async def entries(
    session: AsyncSession, member_id: int, *, offset: int, limit: int
) -> tuple[list[MemberPointsEntry], int]:
    from sqlalchemy import func

    total = await session.scalar(
        select(func.count()).where(MemberPointsEntry.member_id == member_id)
    )
    rows = await session.scalars(
        select(MemberPointsEntry)
        .where(MemberPointsEntry.member_id == member_id)
        .order_by(MemberPointsEntry.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows.all()), int(total or 0)


async def registrations(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    home_store_ids: Sequence[int] | None = None,
) -> list[tuple[datetime, int | None]]:
    """(registered_at in UTC, home store) of every member registered in [since, until), merged
    duplicates left out; only those of these home stores when given. For the analytics' new
    members, which place each on its home store's local day."""
    stmt = select(Member.registered_at, Member.home_store_id).where(
        Member.registered_at >= since, Member.registered_at < until, Member.status != "merged"
    )
    if home_store_ids is not None:
        stmt = stmt.where(Member.home_store_id.in_(list(home_store_ids)))
    return [
        (at if at.tzinfo else at.replace(tzinfo=UTC), store_id)
        for at, store_id in (await session.execute(stmt)).all()
    ]
