"""Points spent by two orders at once on PostgreSQL (real concurrent connections, committed
data): the same points on two orders from the terminal, exactly one order is made and the
other refused whole; the ledger balances afterwards."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from selfmart.db import make_sessionmaker
from selfmart.kit.time import utcnow
from selfmart.members import identify, points
from selfmart.members.checks import find_mismatches
from selfmart.models import Member, MemberPointsEntry, MemberPointsLot, Order
from tests.orders.test_intake_concurrency import World, _post, world  # noqa: F401

from .helpers import ADMIN

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
