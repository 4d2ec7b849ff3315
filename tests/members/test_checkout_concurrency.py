"""Points and coupons spent by two orders at once on PostgreSQL (real concurrent connections,
committed data): the same points on two orders from the terminal, or the same coupon from two
terminals, exactly one order is made and the others refused whole; the ledger balances
afterwards."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete, func, select

from selfmart.db import make_sessionmaker
from selfmart.kit.time import utcnow
from selfmart.members import coupons, identify, points
from selfmart.members.checks import find_mismatches
from selfmart.models import (
    AuditLog,
    CouponTemplate,
    Member,
    MemberCoupon,
    MemberPointsEntry,
    MemberPointsLot,
    Order,
    Store,
)
from tests.orders.test_intake_concurrency import World, _post, world  # noqa: F401
from tests.terminals.builders import make_active_terminal

from .helpers import ADMIN

ORDERS = "/api/terminal/v1/orders"
pytestmark = pytest.mark.postgres_only


async def test_the_same_points_on_two_orders_at_once_exactly_one_wins(world: World) -> None:  # noqa: F811
    factory = make_sessionmaker(world.engine)
    now = utcnow()
    async with factory() as s:
        member = Member(
            member_no=f"R{uuid.uuid4().hex[:10]}", name="race", mobile=None,
            registered_at=now, updated_at=now,
        )  # fmt: skip
        s.add(member)
        await s.flush()
        await points.award(s, member.id, 300, kind="adjust", actor=ADMIN, reason="race")
        await s.commit()
        member_id = member.id
    token = identify.member_token(member_id, world.creds.terminal.id)

    def order(n: int) -> dict[str, object]:
        return {
            "client_order_id": f"PTS-{n}",
            "purchased_at": (utcnow() - timedelta(minutes=1)).isoformat(),
            "lines": [{"barcode": world.barcode, "quantity": 2}],  # 700 fen
            "member": {"token": token},
            "redeem_points": 300,
        }

    try:
        answers = await asyncio.gather(*(_post(world, "/api/terminal/v1/orders", order(n))
                                         for n in range(4)))  # fmt: skip
        codes = sorted(r.status_code for r in answers)
        assert codes == [201, 409, 409, 409], [r.text for r in answers]
        assert all(
            r.json()["error"] == "insufficient_points" for r in answers if r.status_code == 409
        )
        async with factory() as s:
            made = await s.scalar(
                select(func.count()).select_from(Order).where(Order.member_id == member_id)
            )
            assert made == 1
            held = await s.scalar(select(Member.points_balance).where(Member.id == member_id))
            assert held == 0
            assert [m for m in await find_mismatches(s) if m.member_id == member_id] == []
    finally:
        async with factory() as s:
            await s.execute(
                delete(MemberPointsEntry).where(MemberPointsEntry.member_id == member_id)
            )
            await s.execute(delete(MemberPointsLot).where(MemberPointsLot.member_id == member_id))
            await s.execute(
                Order.__table__.update()  # type: ignore[attr-defined]
                .where(Order.member_id == member_id)
                .values(member_id=None)
            )
            await s.execute(delete(Member).where(Member.id == member_id))
            await s.commit()


async def test_the_same_coupon_from_two_terminals_at_once_exactly_one_wins(world: World) -> None:  # noqa: F811
    factory = make_sessionmaker(world.engine)
    now = utcnow()
    async with factory() as s:
        store = await s.get_one(Store, world.store_id)
        other = await make_active_terminal(s, store)  # a second terminal of the store
        member = Member(
            member_no=f"R{uuid.uuid4().hex[:10]}", name="race", mobile=None,
            registered_at=now, updated_at=now,
        )  # fmt: skip
        s.add(member)
        template = CouponTemplate(name="race", kind="amount", amount_off_fen=200,
                                  valid_days=1, created_at=now, updated_at=now)  # fmt: skip
        s.add(template)
        await s.flush()
        coupon = await coupons.give(s, member, template, actor=ADMIN)
        await s.commit()
        member_id, code, template_id = member.id, coupon.code, template.id

    def order(n: int, terminal_id: int) -> dict[str, object]:
        return {
            "client_order_id": f"CPN-{n}",
            "purchased_at": (utcnow() - timedelta(minutes=1)).isoformat(),
            "lines": [{"barcode": world.barcode, "quantity": 2}],  # 700 fen
            "member": {"token": identify.member_token(member_id, terminal_id)},
            "coupon_code": code,
        }

    async def send(n: int) -> httpx.Response:
        creds = world.creds if n % 2 else other
        body, headers = creds.signed_json("POST", ORDERS, order(n, creds.terminal.id))
        return await world.client.post(ORDERS, content=body, headers=headers)

    try:
        answers = await asyncio.gather(*(send(n) for n in range(4)))
        codes = sorted(r.status_code for r in answers)
        assert codes == [201, 409, 409, 409], [r.text for r in answers]
        assert all(r.json()["error"] == "coupon_used" for r in answers if r.status_code == 409)
        async with factory() as s:
            made = (await s.scalars(select(Order.id).where(Order.member_id == member_id))).all()
            assert len(made) == 1
            got = await s.scalar(select(MemberCoupon).where(MemberCoupon.code == code))
            assert got is not None
            assert (got.status, got.order_id, got.discount_fen) == ("redeemed", made[0], 200)
            assert await s.scalar(select(Order.total_fen).where(Order.id == made[0])) == 500
    finally:
        async with factory() as s:
            await s.execute(delete(MemberCoupon).where(MemberCoupon.member_id == member_id))
            await s.execute(delete(CouponTemplate).where(CouponTemplate.id == template_id))
            await s.execute(
                Order.__table__.update()  # type: ignore[attr-defined]
                .where(Order.member_id == member_id)
                .values(member_id=None)
            )
            mine = (AuditLog.entity_type == "member", AuditLog.entity_id == str(member_id))
            await s.execute(delete(AuditLog).where(*mine))
            await s.execute(delete(Member).where(Member.id == member_id))
            await s.commit()
