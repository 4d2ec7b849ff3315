"""Tiers: an upgrade when a paid order crosses a threshold (exactly at it, not one fen under),
order-count and any/all thresholds, a refund that takes a member back under, the nightly
re-evaluation with and without downgrades, the history and the SMS to the member."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import clock_at, utcnow
from selfmart.members import tiers
from selfmart.members.tasks import nightly
from selfmart.models import Member, MemberTierChange, NotificationDelivery
from tests.builders import make_store

from .helpers import ADMIN, make_member, make_tier, paid_order, refund_money, set_program


async def _tier_of(session: AsyncSession, member: Member) -> int | None:
    await session.refresh(member)
    return member.tier_id


async def _history(session: AsyncSession, member: Member) -> list[tuple[str, str]]:
    rows = await session.scalars(
        select(MemberTierChange)
        .where(MemberTierChange.member_id == member.id)
        .order_by(MemberTierChange.id)
    )
    return [(c.direction, c.reason) for c in rows.all()]


async def test_an_order_exactly_at_the_threshold_upgrades_one_fen_under_does_not(
    session: AsyncSession,
) -> None:
    base = await make_tier(session, 0)
    silver = await make_tier(session, 1, min_spend_fen=100_000)
    store = await make_store(session)
    under = await make_member(session, tier=base)
    at = await make_member(session, tier=base)
    await paid_order(session, store, under, 99_999)
    await paid_order(session, store, at, 100_000)
    assert await _tier_of(session, under) == base.id
    assert await _tier_of(session, at) == silver.id
    assert await _history(session, at) == [("upgrade", "order_paid")]
    assert await _history(session, under) == []


async def test_the_order_that_crosses_the_threshold_upgrades_and_the_member_is_told(
    session: AsyncSession,
) -> None:
    base = await make_tier(session, 0)
    silver = await make_tier(session, 1, min_spend_fen=50_000)
    store = await make_store(session)
    member = await make_member(session, tier=base, mobile_no="13912340001")
    await paid_order(session, store, member, 30_000)
    assert await _tier_of(session, member) == base.id
    order = await paid_order(session, store, member, 20_000)  # 500.00 yuan in all
    assert await _tier_of(session, member) == silver.id
    change = (
        await session.scalars(
            select(MemberTierChange).where(MemberTierChange.member_id == member.id)
        )
    ).one()
    assert (change.from_tier_id, change.to_tier_id, change.order_id) == (
        base.id, silver.id, order.id,
    )  # fmt: skip
    assert (change.spend_fen, change.order_count) == (50_000, 2)
    sms = (
        await session.scalars(
            select(NotificationDelivery).where(
                NotificationDelivery.recipient == "13912340001",
                NotificationDelivery.kind == "member.tier_upgrade",
            )
        )
    ).one()
    assert sms.channel == "sms"
    assert silver.name in sms.body


async def test_order_count_thresholds_and_any_or_all(session: AsyncSession) -> None:
    base = await make_tier(session, 0)
    frequent = await make_tier(session, 1, min_spend_fen=1_000_000, min_orders=3, match="any")
    both = await make_tier(session, 2, min_spend_fen=30_000, min_orders=4, match="all")
    store = await make_store(session)
    member = await make_member(session, tier=base)
    for _ in range(2):
        await paid_order(session, store, member, 10_000)
    assert await _tier_of(session, member) == base.id  # 2 orders, 200 yuan
    await paid_order(session, store, member, 9_999)
    assert await _tier_of(session, member) == frequent.id  # 3 orders: "any" is met
    await paid_order(session, store, member, 1)  # 4 orders, 300.00 yuan exactly: "all" met
    assert await _tier_of(session, member) == both.id


async def test_a_refund_that_takes_the_member_back_under_moves_them_down(
    session: AsyncSession,
) -> None:
    base = await make_tier(session, 0)
    silver = await make_tier(session, 1, min_spend_fen=100_000)
    store = await make_store(session)
    member = await make_member(session, tier=base)
    order = await paid_order(session, store, member, 100_000)
    assert await _tier_of(session, member) == silver.id
    await refund_money(session, order, 1)  # one fen back: 99,999 kept, under the threshold
    assert await _tier_of(session, member) == base.id
    assert await _history(session, member) == [("upgrade", "order_paid"), ("downgrade", "refund")]


async def test_a_refund_that_leaves_the_member_at_the_threshold_keeps_the_tier(
    session: AsyncSession,
) -> None:
    base = await make_tier(session, 0)
    silver = await make_tier(session, 1, min_spend_fen=100_000)
    store = await make_store(session)
    member = await make_member(session, tier=base)
    order = await paid_order(session, store, member, 100_001)
    await refund_money(session, order, 1)
    assert await _tier_of(session, member) == silver.id


async def test_spend_outside_the_window_does_not_count(session: AsyncSession) -> None:
    await set_program(session, tier_window_days=30)
    base = await make_tier(session, 0)
    await make_tier(session, 1, min_spend_fen=100_000)
    store = await make_store(session)
    member = await make_member(session, tier=base)
    with clock_at(utcnow() - timedelta(days=31)):
        await paid_order(session, store, member, 60_000)
    await paid_order(session, store, member, 40_000)
    assert await _tier_of(session, member) == base.id
    where = await tiers.standing(session, member.id, window_days=30)
    assert (where.spend_fen, where.order_count) == (40_000, 1)


async def test_nightly_downgrades_only_when_the_operator_turns_them_on(
    session: AsyncSession,
) -> None:
    await set_program(session, tier_window_days=30, downgrades_enabled=False)
    base = await make_tier(session, 0)
    silver = await make_tier(session, 1, min_spend_fen=100_000)
    store = await make_store(session)
    member = await make_member(session, tier=base)
    with clock_at(utcnow() - timedelta(days=20)):
        await paid_order(session, store, member, 100_000)
    assert await _tier_of(session, member) == silver.id
    later = utcnow() + timedelta(days=11)  # the order has left the window
    last, changed = await tiers.reevaluate_all(session, actor=ADMIN, now=later)
    assert await _tier_of(session, member) == silver.id
    await set_program(session, downgrades_enabled=True)
    await tiers.reevaluate_all(session, actor=ADMIN, now=later)
    assert await _tier_of(session, member) == base.id
    assert await _history(session, member) == [
        ("upgrade", "order_paid"), ("downgrade", "nightly"),
    ]  # fmt: skip


async def test_the_nightly_job_is_registered() -> None:
    from selfmart.jobs.registry import JOBS

    assert JOBS["members.nightly"].fn is nightly


async def test_birthday_points_once_in_the_birthday_month(session: AsyncSession) -> None:
    from datetime import date

    from selfmart.members.checks import find_mismatches
    from selfmart.members.schemas import BIRTHDAY_ZONE

    gold = await make_tier(session, 1)
    gold.birthday_points = 88
    await session.flush()
    today = utcnow().astimezone(BIRTHDAY_ZONE).date()
    other_month = today.month % 12 + 1
    born_now = await make_member(session, tier=gold, birthday=date(1990, today.month, 1))
    born_later = await make_member(session, tier=gold, birthday=date(1990, other_month, 1))
    given = await tiers.grant_birthday_points(session, actor=ADMIN, zone="Asia/Shanghai")
    assert given >= 1
    again = await tiers.grant_birthday_points(session, actor=ADMIN, zone="Asia/Shanghai")
    assert again == 0  # once in the month
    await session.refresh(born_now)
    await session.refresh(born_later)
    assert born_now.points_balance == 88
    assert born_later.points_balance == 0
    assert await find_mismatches(session) == []


async def test_the_nightly_job_expires_due_points_and_reviews_tiers(
    session: AsyncSession, jobs: object
) -> None:
    from selfmart.members import points

    await set_program(session, tier_window_days=30, downgrades_enabled=True, points_expiry_days=5)
    base = await make_tier(session, 0)
    silver = await make_tier(session, 1, min_spend_fen=100_000)
    store = await make_store(session)
    member = await make_member(session, tier=base)
    with clock_at(utcnow() - timedelta(days=40)):
        await paid_order(session, store, member, 100_000)  # earned 1000 points, since expired
    await session.refresh(member)
    assert member.tier_id == silver.id
    await points.award(session, member.id, 7, kind="adjust", actor=ADMIN, reason="fresh")
    await session.commit()  # the job reads in its own transaction (a savepoint here)
    result = await nightly()
    assert result["expired_lots"] >= 1
    assert result["tier_changes"] >= 1
    await session.refresh(member)
    assert member.points_balance == 7
    assert member.tier_id == base.id


async def test_the_nightly_moves_exactly_the_members_past_an_edge_in_bulk(
    session: AsyncSession,
) -> None:
    """Set-based: exactly at the threshold moves up, one fen under stays; each move has its
    history row, audit entry and page message, and its SMS is queued for after commit."""
    from selfmart.jobs.outbox import _TOPICS
    from selfmart.models import AuditLog, MemberMessage, OutboxEvent

    await set_program(session, tier_window_days=30, downgrades_enabled=True)
    base = await make_tier(session, 0)
    silver = await make_tier(session, 1, min_spend_fen=100_000)
    store = await make_store(session)
    at = await make_member(session, tier=base)
    under = await make_member(session, tier=base)
    down = await make_member(session, tier=base)
    await paid_order(session, store, at, 100_000)
    await paid_order(session, store, under, 99_999)
    with clock_at(utcnow() - timedelta(days=40)):  # silver once, out of the window now
        await paid_order(session, store, down, 100_000)
    # As a night finds them: the upgrade on payment undone, so the nightly has work to do.
    at.tier_id = base.id
    await session.flush()
    first = min(m.id for m in (at, under, down)) - 1
    last, changed = await tiers.reevaluate_all(session, actor=ADMIN, after_id=first)
    assert changed == 2
    assert last >= max(m.id for m in (at, under, down))
    assert (await _tier_of(session, at), await _tier_of(session, under)) == (silver.id, base.id)
    assert await _tier_of(session, down) == base.id
    moved = (
        await session.scalars(
            select(MemberTierChange)
            .where(MemberTierChange.reason == "nightly",
                   MemberTierChange.member_id.in_([at.id, under.id, down.id]))
            .order_by(MemberTierChange.id)
        )
    ).all()  # fmt: skip
    assert [(c.member_id, c.direction, c.spend_fen) for c in moved] == [
        (at.id, "upgrade", 100_000), (down.id, "downgrade", 0),
    ]  # fmt: skip
    for member, action in ((at, "member.tier_upgrade"), (down, "member.tier_downgrade")):
        assert await session.scalar(
            select(AuditLog.id).where(AuditLog.action == action,
                                      AuditLog.entity_id == str(member.id))
        ) is not None  # fmt: skip
        assert await session.scalar(
            select(MemberMessage.kind).where(MemberMessage.member_id == member.id)
            .order_by(MemberMessage.id.desc())
        ) == "tier_change"  # fmt: skip
    event = await session.scalar(
        select(OutboxEvent).where(OutboxEvent.topic == tiers.TIER_SMS_TOPIC)
        .order_by(OutboxEvent.id.desc())
    )  # fmt: skip
    assert event is not None
    assert tiers.TIER_SMS_TOPIC in _TOPICS
    assert set(event.payload["change_ids"]) == {c.id for c in moved}
    # The handler texts each active member with a mobile (the SMS channel may be absent).
    assert await tiers.text_changes(session, event.payload["change_ids"]) == 2
    # A second night: nothing left to move.
    assert (await tiers.reevaluate_all(session, actor=ADMIN, after_id=first))[1] == 0
