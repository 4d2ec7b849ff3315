"""The points ledger: earned on paid orders through the orders hook, reversed on refunds,
redeemed oldest-expiry first, adjusted with a reason, expired exactly; the balance is never
negative and always equals the ledger and the lots."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import clock_at, utcnow
from selfmart.members import points
from selfmart.members import service as members
from selfmart.members.checks import find_mismatches
from selfmart.members.exceptions import InsufficientPoints
from selfmart.models import MemberPointsEntry, MemberPointsLot
from tests.builders import make_store

from .helpers import (
    ADMIN,
    balance,
    make_member,
    make_tier,
    paid_order,
    refund_all,
    refund_money,
    set_program,
)


async def _entries(session: AsyncSession, member_id: int) -> list[tuple[str, int]]:
    rows = await session.scalars(
        select(MemberPointsEntry)
        .where(MemberPointsEntry.member_id == member_id)
        .order_by(MemberPointsEntry.id)
    )
    return [(e.kind, e.points) for e in rows.all()]


async def _assert_balanced(session: AsyncSession) -> None:
    assert await find_mismatches(session) == []


async def test_a_paid_order_earns_points_per_yuan_times_the_tier_multiplier(
    session: AsyncSession,
) -> None:
    await set_program(session, points_per_yuan=2)
    gold = await make_tier(session, 1, multiplier_pct=150)
    store = await make_store(session)
    member = await make_member(session, tier=gold)
    order = await paid_order(session, store, member, 12_345)  # 123.45 yuan
    # 12345 fen x 2 points/yuan x 1.5 = 370.35 -> 370
    assert await balance(session, member) == 370
    assert await _entries(session, member.id) == [("earn", 370)]
    # The hook is idempotent: a second call for the same order changes nothing.
    await members.order_changed(session, order, actor=ADMIN)
    assert await balance(session, member) == 370
    await _assert_balanced(session)


async def test_an_order_without_a_member_or_with_an_unknown_member_earns_nothing(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    first = await paid_order(session, store, None, 1000)
    order = await paid_order(session, store, None, 1000)
    order.member_id = 987_654_321
    await members.order_changed(session, order, actor=ADMIN)
    found = await session.scalars(
        select(MemberPointsEntry).where(MemberPointsEntry.order_id.in_([first.id, order.id]))
    )
    assert found.all() == []
    await _assert_balanced(session)


async def test_refunds_reverse_what_the_order_earned(session: AsyncSession) -> None:
    await set_program(session, points_per_yuan=1)
    store = await make_store(session)
    member = await make_member(session)
    order = await paid_order(session, store, member, 10_000)
    assert await balance(session, member) == 100
    await refund_money(session, order, 2_550)  # 25.50 yuan back: 74.50 kept -> 74 points
    assert await balance(session, member) == 74
    await refund_money(session, order, 7_450)  # the rest
    assert await balance(session, member) == 0
    assert await _entries(session, member.id) == [("earn", 100), ("reverse", -26), ("reverse", -74)]
    await _assert_balanced(session)


async def test_a_refund_after_the_points_were_spent_takes_what_is_left_and_records_the_rest(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    member = await make_member(session)
    order = await paid_order(session, store, member, 10_000)
    await members.redeem(session, member, 80, reason="gift", order_id=None, actor=ADMIN)
    await refund_all(session, order)
    assert await balance(session, member) == 0  # never negative
    last = (
        await session.scalars(
            select(MemberPointsEntry)
            .where(MemberPointsEntry.member_id == member.id)
            .order_by(MemberPointsEntry.id.desc())
        )
    ).first()
    assert last is not None
    assert (last.kind, last.points) == ("reverse", -20)
    assert last.data["wanted"] == 100
    assert last.data["uncollected"] == 80
    await _assert_balanced(session)


async def test_redeeming_more_than_held_is_refused_and_changes_nothing(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    member = await make_member(session)
    await paid_order(session, store, member, 5_000)
    with pytest.raises(InsufficientPoints) as exc:
        await members.redeem(session, member, 51, reason=None, order_id=None, actor=ADMIN)
    assert exc.value.details[0].field == "points"
    assert await balance(session, member) == 50
    await members.redeem(session, member, 50, reason=None, order_id=None, actor=ADMIN)
    assert await balance(session, member) == 0
    await _assert_balanced(session)


async def test_redemption_spends_the_oldest_award_first_so_expiry_is_exact(
    session: AsyncSession,
) -> None:
    await set_program(session, points_expiry_days=30)
    member = await make_member(session)
    t0 = utcnow() - timedelta(days=40)
    with clock_at(t0):
        old = await points.award(session, member.id, 100, kind="adjust", actor=ADMIN, reason="a")
    with clock_at(t0 + timedelta(days=10)):
        new = await points.award(session, member.id, 100, kind="adjust", actor=ADMIN, reason="b")
    with clock_at(t0 + timedelta(days=20)):
        # 150 spent: all 100 of the old lot, then 50 of the new
        await members.redeem(session, member, 150, reason=None, order_id=None, actor=ADMIN)
    lots = {
        lot.id: lot.remaining
        for lot in (await session.scalars(select(MemberPointsLot).where(
            MemberPointsLot.member_id == member.id))).all()
    }  # fmt: skip
    assert lots == {old.lot_id: 0, new.lot_id: 50}
    # One second before the new lot's expiry nothing expires; at it, exactly its 50 do.
    new_expiry = t0 + timedelta(days=40)
    assert await points.expire_due(session, member.id, now=new_expiry - timedelta(seconds=1)) == []
    expired = await points.expire_due(session, member.id, now=new_expiry)
    assert [(e.kind, e.points) for e in expired] == [("expire", -50)]
    assert await balance(session, member) == 0
    await _assert_balanced(session)


async def test_expired_points_cannot_be_redeemed(session: AsyncSession) -> None:
    await set_program(session, points_expiry_days=1)
    member = await make_member(session)
    with clock_at(utcnow() - timedelta(days=2)):
        await points.award(session, member.id, 30, kind="adjust", actor=ADMIN, reason="x")
    with pytest.raises(InsufficientPoints):
        await members.redeem(session, member, 10, reason=None, order_id=None, actor=ADMIN)
    # the refusal rolled nothing back that should stay: the expiry it found is in the ledger
    assert await balance(session, member) == 0
    await _assert_balanced(session)


async def test_a_negative_adjustment_cannot_go_below_zero(session: AsyncSession) -> None:
    member = await make_member(session)
    await members.adjust(session, member, 40, reason="welcome", actor=ADMIN)
    with pytest.raises(InsufficientPoints):
        await members.adjust(session, member, -41, reason="fix", actor=ADMIN)
    await members.adjust(session, member, -40, reason="fix", actor=ADMIN)
    assert await balance(session, member) == 0
    await _assert_balanced(session)
