"""Coupons: templates through the API (bad terms refused naming the reason), what a coupon
takes off (amount, percent with a cap, never more than the order), redeemed once within
validity and above its minimum spend, released after a refund, birthday coupons once a
year per member, issuing to a tier as a job with progress."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import AppError
from selfmart.kit.time import utcnow
from selfmart.members import coupons
from selfmart.members.schemas import BIRTHDAY_ZONE
from selfmart.models import AuditLog, CouponTemplate, MemberCoupon
from tests.builders import auth_headers, make_store, make_user
from tests.support import fingerprint

from .helpers import ADMIN, make_member, make_tier

TEMPLATES = "/api/v1/members/coupon-templates"


async def _headers(session: AsyncSession) -> dict[str, str]:
    store = await make_store(session)
    return await auth_headers(session, await make_user(session, role="super_admin", stores=[store]))


async def _template(session: AsyncSession, **over: Any) -> CouponTemplate:
    now = utcnow()
    values: dict[str, Any] = {
        "name": "减5元", "kind": "amount", "amount_off_fen": 500, "valid_days": 30,
        "created_at": now, "updated_at": now, **over,
    }  # fmt: skip
    t = CouponTemplate(**values)
    session.add(t)
    await session.flush()
    return t


async def test_templates_are_created_and_bad_terms_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    h = await _headers(session)
    body = {"name": "85折", "kind": "percent", "percent_off_bp": 1500, "max_off_fen": 2000,
            "min_spend_fen": 5000, "valid_days": 14}  # fmt: skip
    r = await client.post(TEMPLATES, json=body, headers=h)
    assert r.status_code == 201, r.text
    assert (r.json()["percent_off_bp"], r.json()["amount_off_fen"]) == (1500, 0)
    before = await fingerprint(session)
    now = utcnow()
    bad = [
        {**body, "percent_off_bp": 0},
        {**body, "kind": "amount", "amount_off_fen": 0},
        {**body, "valid_days": None},
        {**body, "valid_from": now.isoformat(), "valid_to": (now + timedelta(1)).isoformat()},
        {**body, "valid_days": None, "valid_from": now.isoformat(),
         "valid_to": (now - timedelta(1)).isoformat()},
        {**body, "min_spend_fen": -1},
        {**body, "birthday_tier_id": 2_000_000_000},
    ]  # fmt: skip
    for b in bad:
        r = await client.post(TEMPLATES, json=b, headers=h)
        assert r.status_code in (404, 422), (b, r.text)
    assert await fingerprint(session) == before
    r = await client.get(TEMPLATES, headers=h)
    assert "85折" in [t["name"] for t in r.json()]


async def test_redeemed_once_within_validity_and_released_after_a_refund(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    member = await make_member(session)
    stranger = await make_member(session)
    amount = await coupons.give(session, member, await _template(session, min_spend_fen=2000),
                                actor=ADMIN)  # fmt: skip
    percent = await coupons.give(
        session, member,
        await _template(session, kind="percent", amount_off_fen=0, percent_off_bp=1500,
                        max_off_fen=1000),
        actor=ADMIN,
    )  # fmt: skip

    def redeem(code: str, order_id: int, fen: int, member_id: int = member.id) -> Any:
        return coupons.redeem_coupon(
            session, coupon_code=code, member_id=member_id, order_id=order_id,
            order_amount_fen=fen, actor=ADMIN,
        )  # fmt: skip

    with pytest.raises(AppError) as exc:
        await redeem(amount.code, 1, 1999)  # one fen under the minimum spend
    assert exc.value.code == "coupon_min_spend"
    with pytest.raises(AppError) as exc:
        await redeem(amount.code, 1, 5000, stranger.id)  # not the stranger's coupon
    assert exc.value.code == "coupon_not_found"
    won = await redeem(amount.code.lower(), 1, 2000)  # exactly the minimum; code as typed
    assert won.discount_fen == 500
    assert (await redeem(amount.code, 1, 2000)).discount_fen == 500  # the terminal's retry
    with pytest.raises(AppError) as exc:
        await redeem(amount.code, 2, 9000)  # another order
    assert exc.value.code == "coupon_used"

    # 15% of 59.99 is 8.9985: 899 fen, rounded down; of 100 yuan it is capped at 10.
    assert (await redeem(percent.code, 3, 5999)).discount_fen == 899
    assert await coupons.release_coupon(
        session, coupon_id=percent.id, member_id=member.id, order_id=3, actor=ADMIN
    )
    assert not await coupons.release_coupon(
        session, coupon_id=percent.id, member_id=member.id, order_id=3, actor=ADMIN
    )
    assert (await redeem(percent.code, 4, 10_000)).discount_fen == 1000
    with pytest.raises(AppError) as exc:
        await coupons.release_coupon(
            session, coupon_id=percent.id, member_id=member.id, order_id=3, actor=ADMIN
        )
    assert exc.value.code == "coupon_used"

    # Validity: an amount coupon never takes more than the order; expired and future refused.
    small = await coupons.give(session, member, await _template(session), actor=ADMIN)
    assert (await redeem(small.code, 5, 300)).discount_fen == 300
    late = await coupons.give(session, member, await _template(session), actor=ADMIN)
    late.valid_to = utcnow() - timedelta(seconds=1)
    early = await coupons.give(session, member, await _template(session), actor=ADMIN)
    early.valid_from = utcnow() + timedelta(hours=1)
    await session.flush()
    for c, code in ((late, "coupon_expired"), (early, "coupon_not_yet_valid")):
        with pytest.raises(AppError) as exc:
            await redeem(c.code, 6, 5000)
        assert exc.value.code == code
    redeemed = select(func.count()).where(AuditLog.action == "member.coupon_redeem")
    assert await session.scalar(redeemed) == 4

    h = await _headers(session)
    r = await client.get(f"/api/v1/members/{member.id}/coupons", headers=h)
    states = {c["code"]: c["state"] for c in r.json()}
    assert states[late.code] == "expired"
    assert states[amount.code] == "redeemed"
    r = await client.get(f"/api/v1/members/{member.id}/coupons?usable=true", headers=h)
    assert [c["code"] for c in r.json()] == []


async def test_birthday_coupons_once_a_year_for_the_birthday_month(session: AsyncSession) -> None:
    today = utcnow().astimezone(BIRTHDAY_ZONE).date()
    this_month = date(1990, today.month, 1)
    other_month = date(1990, today.month % 12 + 1, 1)
    gold = await make_tier(session, 7)
    a = await make_member(session, birthday=this_month)
    b = await make_member(session, birthday=other_month)
    c = await make_member(session, birthday=this_month, tier=gold)
    everyone = await _template(session, birthday=True, name="生日券")
    golden = await _template(session, birthday=True, birthday_tier_id=gold.id, name="金卡生日券")
    await _template(session, birthday=False)
    first = await coupons.issue_birthday(session, zone="Asia/Shanghai", actor=ADMIN)
    again = await coupons.issue_birthday(session, zone="Asia/Shanghai", actor=ADMIN)
    assert again == 0
    held = {
        (m, t)
        for m, t in (
            await session.execute(
                select(MemberCoupon.member_id, MemberCoupon.template_id).where(
                    MemberCoupon.member_id.in_([a.id, b.id, c.id])
                )
            )
        ).all()
    }
    assert held == {(a.id, everyone.id), (c.id, everyone.id), (c.id, golden.id)}
    assert first >= 3


async def test_issuing_to_a_tier_runs_as_a_job_with_progress(
    client: httpx.AsyncClient, session: AsyncSession, jobs: Any
) -> None:
    h = await _headers(session)
    tier = await make_tier(session, 9)
    members = [await make_member(session, tier=tier) for _ in range(3)]
    await make_member(session, tier=tier, status="disabled")
    template = await _template(session)
    await session.commit()
    r = await client.post(
        "/api/v1/members/coupon-issues",
        json={"template_id": template.id, "target": "tier", "target_id": tier.id},
        headers=h,
    )
    assert r.status_code == 202, r.text
    r2 = await client.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=h)
    job = r2.json()
    assert job["status"] == "succeeded", job
    assert job["result"]["issued"] == 3
    assert job["progress"] == 3
    held = await session.scalars(
        select(MemberCoupon.member_id).where(MemberCoupon.template_id == template.id)
    )
    assert sorted(held.all()) == sorted(m.id for m in members)
    r = await client.get("/api/v1/members/coupon-issues", headers=h)
    assert r.json()[0]["status"] == "done"
    assert r.json()[0]["issued"] == 3


async def test_issuing_to_a_segment_gives_its_active_members_only(
    client: httpx.AsyncClient, session: AsyncSession, jobs: Any
) -> None:
    h = await _headers(session)
    picked = [await make_member(session, tags=["vip"]) for _ in range(2)]
    await make_member(session, tags=["vip"], status="disabled")
    await make_member(session, tags=["other"])
    template = await _template(session)
    await session.commit()
    seg = await client.post(
        "/api/v1/members/segments",
        json={"name": "VIPs", "rules": {"tags": ["vip"]}},
        headers=h,
    )
    assert seg.status_code == 201, seg.text
    r = await client.post(
        "/api/v1/members/coupon-issues",
        json={"template_id": template.id, "target": "segment", "target_id": seg.json()["id"]},
        headers=h,
    )
    assert r.status_code == 202, r.text
    job = (await client.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=h)).json()
    assert job["status"] == "succeeded", job
    assert job["result"]["issued"] == 2
    held = await session.scalars(
        select(MemberCoupon.member_id).where(MemberCoupon.template_id == template.id)
    )
    assert sorted(held.all()) == sorted(m.id for m in picked)
    r = await client.post(
        "/api/v1/members/coupon-issues",
        json={"template_id": template.id, "target": "segment", "target_id": 999_999},
        headers=h,
    )
    assert r.status_code == 404


async def test_an_issue_run_delivered_twice_issues_each_coupon_once(session: AsyncSession) -> None:
    from selfmart.models import CouponIssue

    tier = await make_tier(session, 11)
    members = [await make_member(session, tier=tier) for _ in range(3)]
    template = await _template(session)
    run = CouponIssue(template_id=template.id, target="tier", target_id=tier.id,
                      created_at=utcnow())  # fmt: skip
    session.add(run)
    await session.flush()
    ids = await coupons.target_ids(session, run, after_id=0, limit=500)
    assert ids == [m.id for m in members]
    assert await coupons.issue_chunk(session, run, ids) == 3
    assert await coupons.issue_chunk(session, run, ids) == 0
    await session.refresh(run)
    assert run.issued == 3
