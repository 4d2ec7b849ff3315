"""A member's coupon redeemed inside the terminal's order: it comes off after member prices
and the tier's discount and before points, spread over the lines (so refunds of lines give
back what they cost after it); a wrong member's, expired, used or below-minimum coupon is
refused naming `coupon_code` with nothing written; an order closed or cancelled unpaid, or
refunded in full, gives the coupon back, a partial refund does not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.members import coupons, points
from selfmart.members.checks import find_mismatches
from selfmart.models import AuditLog, CouponTemplate, Member, MemberCoupon, Order, OrderLine
from selfmart.orders import service as orders
from selfmart.orders.schemas import ManualPaymentBody
from tests.builders import auth_headers, make_user

from .helpers import ADMIN, make_member, refund_all, refund_money
from .test_checkout import T, _order, _post, _token, _world


async def _coupon(session: AsyncSession, member: Member, **over: Any) -> MemberCoupon:
    now = utcnow()
    values: dict[str, Any] = {
        "name": "满10减5", "kind": "amount", "amount_off_fen": 500, "min_spend_fen": 1000,
        "valid_days": 30, "created_at": now, "updated_at": now, **over,
    }  # fmt: skip
    template = CouponTemplate(**values)
    session.add(template)
    await session.flush()
    return await coupons.give(session, member, template, actor=ADMIN)


def _lines(cola_id: int, chips_id: int) -> list[dict[str, Any]]:
    # 2 colas at the member price (600) and chips with the tier's 5% off (760): 1360
    return [{"product_id": cola_id, "quantity": 2}, {"product_id": chips_id, "quantity": 1}]


async def test_a_coupon_comes_off_before_points_spread_over_the_lines(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _store, creds, member, cola, chips = await _world(session)
    await points.award(session, member.id, 1000, kind="adjust", actor=ADMIN, reason="gift")
    coupon = await _coupon(session, member)
    token = await _token(client, creds, session, member)
    lines = _lines(cola.id, chips.id)
    extra = {"coupon_code": coupon.code.lower(), "redeem_points": 400}  # typed in any case
    q = await _post(client, creds, f"{T}/members/quote",
                    {"lines": lines, "member_token": token, **extra})  # fmt: skip
    assert q.status_code == 200, q.text
    quote = q.json()
    # 500 off 1360, shared 600:760 -> 220.6 / 279.4: the spare fen to the larger remainder
    assert [ln["coupon_fen"] for ln in quote["lines"]] == [221, 279]
    # points pay 400 of the 860 left, at most half of it (430)
    assert (quote["coupon_code"], quote["coupon_fen"]) == (coupon.code, 500)
    assert (quote["points_fen"], quote["total_fen"], quote["max_points"]) == (400, 460, 430)
    assert quote["saved_fen"] == 140 + 500  # member prices and tier, and the coupon
    await session.refresh(coupon)
    assert coupon.status == "issued"  # a quote writes nothing

    r = await _post(client, creds, f"{T}/orders",
                    _order("C-1", lines, member={"token": token}, **extra))  # fmt: skip
    assert r.status_code == 201, r.text
    res = r.json()
    assert (res["coupon_code"], res["coupon_fen"], res["total_fen"]) == (coupon.code, 500, 460)
    assert (res["points_fen"], res["saved_fen"]) == (400, 640)
    order = await session.get_one(Order, res["order_id"])
    await session.refresh(order)
    assert (order.coupon_code, order.coupon_fen, order.total_fen) == (coupon.code, 500, 460)
    got = (
        await session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)
        )
    ).all()
    # cola: 221 coupon + 176 points; chips: 40 tier + 279 coupon + 224 points
    assert [(ln.discount_fen, ln.amount_fen) for ln in got] == [(397, 203), (543, 257)]
    await session.refresh(coupon)
    assert (coupon.status, coupon.order_id, coupon.discount_fen) == ("redeemed", order.id, 500)
    assert (
        await session.scalar(
            select(AuditLog.store_id).where(
                AuditLog.action == "member.coupon_redeem", AuditLog.entity_id == str(member.id)
            )
        )
        == order.store_id
    )
    assert await find_mismatches(session) == []


async def test_a_wrong_expired_used_or_too_small_coupon_is_refused_and_nothing_written(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, creds, member, cola, chips = await _world(session)
    await points.award(session, member.id, 1000, kind="adjust", actor=ADMIN, reason="gift")
    other = await make_member(session, name="李四")
    theirs = await _coupon(session, other)
    expired = await _coupon(session, member)
    expired.valid_to = utcnow() - timedelta(seconds=1)
    used = await _coupon(session, member)
    used.status, used.order_id, used.discount_fen = "redeemed", 1, 500
    big = await _coupon(session, member, min_spend_fen=1361)  # one fen over this order
    await session.flush()
    token = await _token(client, creds, session, member)
    lines = _lines(cola.id, chips.id)
    cases = [
        (theirs.code, 404, "coupon_not_found"),
        (expired.code, 409, "coupon_expired"),
        (used.code, 409, "coupon_used"),
        (big.code, 409, "coupon_min_spend"),
        ("CPNOSUCHCODE", 404, "coupon_not_found"),
    ]
    for i, (code, status, error) in enumerate(cases):
        for target, body in (
            (f"{T}/members/quote", {"lines": lines, "member_token": token}),
            (f"{T}/orders", _order(f"X-{i}", lines, member={"token": token})),
        ):
            r = await _post(client, creds, target, {**body, "coupon_code": code,
                                                    "redeem_points": 100})  # fmt: skip
            assert r.status_code == status, (code, r.text)
            assert r.json()["error"] == error
            assert r.json()["details"][0]["field"] == "coupon_code"
    # At exactly the minimum spend the coupon is good.
    big.min_spend_fen = 1360
    await session.flush()
    q = await _post(client, creds, f"{T}/members/quote",
                    {"lines": lines, "member_token": token, "coupon_code": big.code})  # fmt: skip
    assert q.status_code == 200, q.text
    # Without an identified member: 422 naming coupon_code.
    r = await _post(client, creds, f"{T}/orders", _order(
        "X-9", lines, member={"member_no": member.member_no}, coupon_code=big.code))  # fmt: skip
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "coupon_code"
    # Nothing was written: no order, the points and every coupon as they were.
    assert (
        await session.scalar(
            select(func.count()).select_from(Order).where(Order.store_id == store.id)
        )
        == 0
    )
    for c in (theirs, expired, big):
        await session.refresh(c)
        assert (c.status, c.order_id) == ("issued", None)
    await session.refresh(member)
    assert member.points_balance == 1000


async def _coupon_order(
    client: httpx.AsyncClient, session: AsyncSession, client_id: str = "C-1"
) -> tuple[MemberCoupon, Order]:
    _store, creds, member, cola, chips = await _world(session)
    coupon = await _coupon(session, member)
    token = await _token(client, creds, session, member)
    body = _order(client_id, _lines(cola.id, chips.id), member={"token": token},
                  coupon_code=coupon.code)  # fmt: skip
    r = await _post(client, creds, f"{T}/orders", body)
    assert r.status_code == 201, r.text
    again = await _post(client, creds, f"{T}/orders", body)  # a resend: the first answer
    assert again.status_code == 200, again.text
    assert (again.json()["coupon_code"], again.json()["coupon_fen"]) == (coupon.code, 500)
    assert again.json()["total_fen"] == r.json()["total_fen"] == 860
    order = await session.get_one(Order, r.json()["order_id"])
    await session.refresh(order)
    return coupon, order


async def test_an_order_cancelled_unpaid_gives_the_coupon_back(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    coupon, order = await _coupon_order(client, session)
    await orders.cancel(session, order, reason="customer left", actor=ADMIN)
    await session.refresh(coupon)
    assert (coupon.status, coupon.order_id, coupon.discount_fen) == ("issued", None, None)
    await session.refresh(order)
    assert (order.coupon_code, order.coupon_fen) == (coupon.code, 500)  # as it was charged
    staff = await auth_headers(session, await make_user(session, role="super_admin"))
    shown = (await client.get(f"/api/v1/orders/{order.id}", headers=staff)).json()
    assert (shown["coupon_code"], shown["coupon_fen"], shown["total_fen"]) == (
        coupon.code,
        500,
        860,
    )
    assert await coupons.settle_order(session, order, actor=ADMIN) is False  # once


async def test_a_partial_refund_keeps_the_coupon_used_and_a_full_refund_gives_it_back(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    coupon, order = await _coupon_order(client, session)
    await orders.record_manual_payment(session, order, ManualPaymentBody(), actor=ADMIN)
    await refund_money(session, order, 86)
    await session.refresh(coupon)
    assert (coupon.status, coupon.order_id) == ("redeemed", order.id)
    await refund_money(session, order, 774)  # the rest of the money
    await session.refresh(order)
    assert order.refunded_fen == order.paid_fen == 860
    await session.refresh(coupon)
    assert (coupon.status, coupon.order_id) == ("issued", None)
    assert await find_mismatches(session) == []


async def test_a_full_refund_of_the_goods_gives_the_coupon_back(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    coupon, order = await _coupon_order(client, session)
    await orders.record_manual_payment(session, order, ManualPaymentBody(), actor=ADMIN)
    await refund_all(session, order)
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("refunded", 860)
    await session.refresh(coupon)
    assert (coupon.status, coupon.order_id) == ("issued", None)
