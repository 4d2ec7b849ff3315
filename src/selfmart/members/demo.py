"""Demo members: the loyalty programme as a chain would run it (three tiers, coupon templates,
a segment) and the twenty regulars the demo's terminals know, registered before the month of
orders so that `seed_orders` can identify them at checkout. Their points, tiers and tier
history then come from those orders through the same services a real checkout uses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import SYSTEM
from selfmart.kit.time import clock_at, utcnow
from selfmart.members import coupons, profiles, segments, tiers
from selfmart.members.schemas import (
    CouponTemplateBody,
    MemberCreate,
    SegmentBody,
    SegmentRules,
    TierCreate,
)
from selfmart.models import Member, MemberTier, Store

log = logging.getLogger(__name__)

#: (code, name, rank, spend threshold in fen, orders threshold, discount bp, points multiplier %)
DEMO_TIERS = [
    ("regular", "普通会员", 0, 0, None, 0, 100),
    ("silver", "银卡会员", 1, 30_000, 6, 200, 120),
    ("gold", "金卡会员", 2, 100_000, 15, 500, 150),
]


def _birthday(n: int, today: date) -> date:
    """A birthday for the n-th regular: every fifth one this month, so the birthday offers
    have someone to go to."""
    month = today.month if n % 5 == 0 else (n * 5) % 12 + 1
    return date(1975 + (n * 7) % 30, month, 1 + (n * 11) % 28)


async def seed_members(session: AsyncSession, stores: Sequence[Store]) -> int:
    """The programme and the regulars, once; returns how many members were added."""
    from selfmart.orders.demo import HISTORY_DAYS, MEMBERS

    if await session.scalar(select(func.count()).select_from(Member)):
        return 0
    actor = SYSTEM
    registered = utcnow() - timedelta(days=HISTORY_DAYS + 5)
    with clock_at(registered):
        if not await session.scalar(select(func.count()).select_from(MemberTier)):
            for code, name, rank, spend, count, discount, multiplier in DEMO_TIERS:
                await tiers.create_tier(
                    session,
                    TierCreate(
                        code=code,
                        name=name,
                        rank=rank,
                        min_spend_fen=spend,
                        min_orders=count,
                        match="any",
                        discount_bp=discount,
                        points_multiplier_pct=multiplier,
                        birthday_points=100 * rank,
                        birthday_benefit="生日当月双倍积分" if rank else "",
                    ),
                    actor=actor,
                )
        today = utcnow().date()
        for n, (_, name, mobile) in enumerate(MEMBERS, start=1):
            await profiles.create(
                session,
                MemberCreate(
                    name=name,
                    mobile=mobile,
                    gender="female" if n % 2 == 0 else "male",
                    birthday=_birthday(n, today),
                    home_store_id=stores[n % len(stores)].id if stores else None,
                    tags=["常客"] if n % 3 == 0 else [],
                    marketing_consent=n % 4 != 0,
                    channel="terminal",
                ),
                actor=actor,
            )
        await coupons.create_template(
            session,
            CouponTemplateBody(
                name="满30减3", kind="amount", amount_off_fen=300, min_spend_fen=3000, valid_days=30
            ),
            actor=actor,
        )
        await coupons.create_template(
            session,
            CouponTemplateBody(
                name="生日九折券",
                kind="percent",
                percent_off_bp=1000,
                max_off_fen=2000,
                valid_days=31,
                birthday=True,
            ),
            actor=actor,
        )
        await segments.create(
            session,
            SegmentBody(
                name="近30天常来的会员",
                rules=SegmentRules(visited_within_days=30, min_orders=3, window_days=30),
            ),
            actor=actor,
        )
    log.info("demo members: %d regulars, %d tiers", len(MEMBERS), len(DEMO_TIERS))
    return len(MEMBERS)


async def demo_member_ids(session: AsyncSession) -> list[int]:
    """The regulars' ids in the order they were registered (empty before `seed_members`)."""
    return list(
        (
            await session.scalars(
                select(Member.id).where(Member.status == "active").order_by(Member.id).limit(20)
            )
        ).all()
    )
