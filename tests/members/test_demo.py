"""Demo members: the regulars are identified at checkout by token, so their orders are linked,
priced with the tier's discount once they have one, and their points and tiers come from
those orders; the programme has tiers at every level, coupons and a segment; the ledgers and
the sales summaries tie out; a second seed adds nothing."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import refresh
from selfmart.demo import seed_demo
from selfmart.members.checks import find_mismatches
from selfmart.models import (
    CouponTemplate,
    Member,
    MemberPointsEntry,
    MemberSegment,
    MemberTier,
    MemberTierChange,
    Order,
)
from selfmart.orders.demo import MEMBERS


async def test_demo_members_shop_earn_points_and_climb_tiers(demo_session: AsyncSession) -> None:

    assert await demo_session.scalar(select(func.count()).select_from(Member)) == len(MEMBERS)
    assert await demo_session.scalar(select(func.count()).select_from(CouponTemplate)) == 2
    assert await demo_session.scalar(select(func.count()).select_from(MemberSegment)) == 1

    # Orders of regulars are linked to the member, not just to a number the terminal sent.
    linked = await demo_session.scalar(
        select(func.count()).select_from(Order).where(Order.member_id.is_not(None))
    )
    assert linked
    assert linked > 20
    unlinked_numbers = await demo_session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.member_no.is_not(None), Order.member_id.is_(None))
    )
    assert unlinked_numbers == 0

    # Tiers at more than one level, each reached through a recorded change.
    by_tier = dict(
        (
            await demo_session.execute(
                select(MemberTier.code, func.count(Member.id))
                .join(Member, Member.tier_id == MemberTier.id)
                .group_by(MemberTier.code)
            )
        ).all()
    )
    assert {"silver", "gold"} <= set(by_tier), by_tier
    tiered = await demo_session.scalar(
        select(func.count()).select_from(Member).where(Member.tier_id.is_not(None))
    )
    changes = await demo_session.scalar(select(func.count()).select_from(MemberTierChange))
    assert changes is not None
    assert tiered is not None
    assert changes >= tiered

    # A gold member's later orders carry the tier's discount.
    gold_discounted = await demo_session.scalar(
        select(func.count())
        .select_from(Order)
        .join(Member, Member.id == Order.member_id)
        .join(MemberTier, MemberTier.id == Member.tier_id)
        .where(MemberTier.code == "gold", Order.discount_fen > 0)
    )
    assert gold_discounted

    # Points were earned and every balance equals its ledger.
    earned = await demo_session.scalar(
        select(func.count()).select_from(MemberPointsEntry).where(MemberPointsEntry.kind == "earn")
    )
    assert earned
    assert earned >= linked // 2
    assert await find_mismatches(demo_session) == []

    # The summaries the dashboards read are up to date and count the paying members.
    result = await refresh.check(demo_session)
    assert result.differences == []
    assert result.pending == 0
    assert result.checked > 0

    # A second seed adds no member, coupon template or tier change.
    before = (
        await demo_session.scalar(select(func.count()).select_from(Member)),
        await demo_session.scalar(select(func.count()).select_from(MemberTierChange)),
        await demo_session.scalar(select(func.count()).select_from(CouponTemplate)),
    )
    await seed_demo(demo_session)
    after = (
        await demo_session.scalar(select(func.count()).select_from(Member)),
        await demo_session.scalar(select(func.count()).select_from(MemberTierChange)),
        await demo_session.scalar(select(func.count()).select_from(CouponTemplate)),
    )
    assert after == before
