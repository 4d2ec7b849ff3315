"""Coupons and merges under real concurrency on PostgreSQL (committed data, separate
connections): one coupon redeemed from many terminals at once — exactly one wins; a merge
racing the payment of an order of the merged record — both finish, the order and its points
end with the survivor, and every ledger equals its balance and its lots."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.db import make_engine, make_sessionmaker
from selfmart.kit.time import utcnow
from selfmart.members import coupons
from selfmart.members import merge as merging
from selfmart.members.checks import find_mismatches
from selfmart.members.exceptions import CouponUsed
from selfmart.models import CouponTemplate, Member, MemberOrder, Order
from selfmart.orders import service as orders
from selfmart.orders.schemas import ManualPaymentBody
from tests.builders import make_store
from tests.orders.builders import make_order, make_product

from .helpers import ADMIN, set_program

pytestmark = pytest.mark.postgres_only


def _racers(engine: AsyncEngine) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    url = engine.url.render_as_string(hide_password=False)
    racers = make_engine(url, pool_size=20, max_overflow=0)
    return racers, make_sessionmaker(racers)


async def _member(s: AsyncSession) -> Member:
    now = utcnow()
    m = Member(
        member_no=f"R{uuid.uuid4().hex[:10]}", name="race", mobile=None, registered_at=now,
        updated_at=now,
    )  # fmt: skip
    s.add(m)
    await s.flush()
    return m


async def test_one_coupon_from_many_terminals_at_once_exactly_one_wins(
    engine: AsyncEngine, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections (PostgreSQL); SQLite serialises writers")
    racers, factory = _racers(engine)
    try:
        async with factory() as s:
            member = await _member(s)
            now = utcnow()
            template = CouponTemplate(
                name="race", kind="amount", amount_off_fen=300, valid_days=1, created_at=now,
                updated_at=now,
            )  # fmt: skip
            s.add(template)
            await s.flush()
            coupon = await coupons.give(s, member, template, actor=ADMIN)
            await s.commit()
            member_id, code = member.id, coupon.code

        async def redeem(order_id: int) -> bool:
            async with factory() as s:
                try:
                    await coupons.redeem_coupon(
                        s, coupon_code=code, member_id=member_id, order_id=order_id,
                        order_amount_fen=1000, actor=ADMIN,
                    )  # fmt: skip
                except CouponUsed:
                    await s.rollback()
                    return False
                await s.commit()
                return True

        results = await asyncio.gather(*(redeem(1000 + i) for i in range(12)))
        assert results.count(True) == 1
        async with factory() as s:
            held = await coupons.member_coupons(s, member_id)
            assert [(c.status, c.discount_fen) for c in held] == [("redeemed", 300)]
            assert held[0].order_id == 1000 + results.index(True)
    finally:
        await racers.dispose()


async def test_a_merge_racing_an_orders_payment_leaves_every_ledger_balanced(
    engine: AsyncEngine, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections (PostgreSQL); SQLite serialises writers")
    racers, factory = _racers(engine)
    try:
        async with factory() as s:
            await set_program(s, points_per_yuan=1)
            store = await make_store(s)
            product = await make_product(s, price_fen=2_000, stores=[store])
            await s.commit()
        # Both orders of arrival, and at once: the merge first, the payment first, together.
        for head_start in (0.0, 0.05, -0.05, 0.0):
            async with factory() as s:
                keep = await _member(s)
                other = await _member(s)
                order = await make_order(s, store, [(product, 1)])
                order.member_id, order.member_no = other.id, other.member_no
                await s.commit()
                keep_id, other_id, order_id = keep.id, other.id, order.id

            async def pay(delay: float, order_id: int = order_id) -> None:
                await asyncio.sleep(max(delay, 0))
                async with factory() as s:
                    o = await orders.get_for_actor(s, order_id, ADMIN, for_update=True)
                    await orders.record_manual_payment(s, o, ManualPaymentBody(), actor=ADMIN)
                    await s.commit()

            async def merge(delay: float, keep_id: int = keep_id, other_id: int = other_id) -> None:
                await asyncio.sleep(max(delay, 0))
                async with factory() as s:
                    await merging.merge(s, keep_id, other_id, reason="race", actor=ADMIN)
                    await s.commit()

            await asyncio.wait_for(asyncio.gather(pay(head_start), merge(-head_start)), 30)
            async with factory() as s:
                keep_row = await s.get(Member, keep_id)
                other_row = await s.get(Member, other_id)
                paid = await s.get(Order, order_id)
                assert keep_row is not None
                assert other_row is not None
                assert paid is not None
                assert (other_row.status, other_row.points_balance) == ("merged", 0)
                assert paid.member_id == keep_id
                assert keep_row.points_balance == 20
                owner = select(MemberOrder.member_id).where(MemberOrder.order_id == order_id)
                assert (await s.scalars(owner)).all() == [keep_id]
                wrong = [m for m in await find_mismatches(s) if m.member_id in (keep_id, other_id)]
                assert wrong == []
    finally:
        await racers.dispose()
