"""Merging two records of one person: orders, points (with their lots and expiry), coupons
and tier history follow the survivor; the other is marked merged; both ledgers stay equal to
their balances; an order paid later for the merged record counts for the survivor."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.members import coupons, points
from selfmart.members.checks import find_mismatches
from selfmart.models import (
    AuditLog,
    CouponTemplate,
    Member,
    MemberCoupon,
    MemberOrder,
    MemberPointsEntry,
    MemberPointsLot,
    MemberTierChange,
    Order,
)
from tests.builders import auth_headers, make_store, make_user
from tests.support import fingerprint

from .helpers import ADMIN, balance, make_member, make_tier, paid_order, set_program


async def _template(session: AsyncSession) -> CouponTemplate:
    now = utcnow()
    t = CouponTemplate(
        name="5 off", kind="amount", amount_off_fen=500, valid_days=30, created_at=now,
        updated_at=now,
    )  # fmt: skip
    session.add(t)
    await session.flush()
    return t


async def test_merge_moves_orders_points_coupons_and_tier_history(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    h = await auth_headers(session, await make_user(session, role="super_admin", stores=[store]))
    await set_program(session, points_per_yuan=1)
    gold = await make_tier(session, 1, min_spend_fen=10_000)
    keep = await make_member(session, name="王小明", mobile_no=None, tags=["a"])
    keep.mobile = None
    await session.flush()
    other = await make_member(session, name="王小明", birthday=None, tags=["b"])
    other_mobile = other.mobile
    await paid_order(session, store, keep, 3_000)  # 30 points
    o2 = await paid_order(session, store, other, 12_000)  # 120 points, and gold
    await points.award(session, other.id, 7, kind="adjust", actor=ADMIN, reason="gift")
    template = await _template(session)
    coupon = await coupons.give(session, other, template, actor=ADMIN)
    await session.refresh(other)
    assert other.tier_id == gold.id
    assert await balance(session, other) == 127

    r = await client.post(
        f"/api/v1/members/{keep.id}/merge",
        json={"merged_id": other.id, "reason": "same person, two cards"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["orders_moved"], result["points_moved"], result["coupons_moved"]) == (1, 127, 1)
    assert "mobile" in result["fields_filled"]

    await session.refresh(keep)
    await session.refresh(other)
    assert (other.status, other.merged_into_id, other.mobile) == ("merged", keep.id, None)
    assert (keep.mobile, keep.tier_id, keep.tags) == (other_mobile, gold.id, ["a", "b"])
    assert (keep.points_balance, other.points_balance) == (157, 0)
    order = await session.get(Order, o2.id, populate_existing=True)
    assert order is not None
    assert (order.member_id, order.member_no) == (keep.id, keep.member_no)
    owners = await session.scalars(
        select(MemberOrder.member_id).where(MemberOrder.order_id == o2.id)
    )
    assert owners.all() == [keep.id]
    assert (await session.get(MemberCoupon, coupon.id, populate_existing=True)).member_id == keep.id  # type: ignore[union-attr]
    lots = await session.scalar(
        select(func.sum(MemberPointsLot.remaining)).where(MemberPointsLot.member_id == keep.id)
    )
    assert lots == 157
    kinds = {
        (e.member_id, e.kind, e.points)
        for e in await session.scalars(
            select(MemberPointsEntry).where(MemberPointsEntry.kind.in_(["merge_in", "merge_out"]))
        )
    }
    assert kinds == {(other.id, "merge_out", -127), (keep.id, "merge_in", 127)}
    assert [m for m in await find_mismatches(session) if m.member_id in (keep.id, other.id)] == []
    history = await session.scalars(
        select(MemberTierChange.member_id).where(MemberTierChange.member_id == other.id)
    )
    assert history.all() == []
    actions = set(
        (
            await session.scalars(
                select(AuditLog.action).where(AuditLog.action.like("member.merge%"))
            )
        ).all()
    )
    assert actions == {"member.merge", "member.merged"}

    # An order paid afterwards for the merged record counts for the survivor.
    late = await paid_order(session, store, other, 1_000)
    await session.refresh(keep)
    assert keep.points_balance == 167
    assert late.member_id == keep.id
    assert await balance(session, other) == 0


async def test_merge_refuses_itself_a_merged_record_and_unknown_members(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    h = await auth_headers(session, await make_user(session, role="super_admin", stores=[store]))
    a = await make_member(session)
    b = await make_member(session)
    url = f"/api/v1/members/{a.id}/merge"
    before = await fingerprint(session)
    r = await client.post(url, json={"merged_id": a.id, "reason": "x"}, headers=h)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "merged_id"
    r = await client.post(url, json={"merged_id": 2**40, "reason": "x"}, headers=h)
    assert r.status_code == 404
    r = await client.post(url, json={"merged_id": b.id}, headers=h)
    assert r.status_code == 422
    assert await fingerprint(session) == before
    r = await client.post(url, json={"merged_id": b.id, "reason": "dup"}, headers=h)
    assert r.status_code == 200, r.text
    r = await client.post(url, json={"merged_id": b.id, "reason": "again"}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "member_inactive"
    r = await client.post(
        f"/api/v1/members/{b.id}/merge", json={"merged_id": a.id, "reason": "back"}, headers=h
    )
    assert r.status_code == 409
    assert (await session.get(Member, b.id)) is not None
