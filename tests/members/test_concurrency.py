"""Points under real concurrency on PostgreSQL: committed data, separate connections. The same
points spent by many redemptions at once: exactly the ones the balance covers win, the rest
are refused, and the balance equals the ledger and the lots afterwards."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.db import make_engine, make_sessionmaker
from selfmart.members import points
from selfmart.members import service as members
from selfmart.members.checks import find_mismatches
from selfmart.members.exceptions import InsufficientPoints
from selfmart.models import AuditLog, Member, MemberPointsEntry, MemberPointsLot

from .helpers import ADMIN

pytestmark = pytest.mark.postgres_only


async def test_the_same_points_spent_twice_at_once_exactly_one_wins(
    engine: AsyncEngine, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections (PostgreSQL); SQLite serialises writers")
    url = engine.url.render_as_string(hide_password=False)
    racers = make_engine(url, pool_size=20, max_overflow=0)
    factory = make_sessionmaker(racers)
    from selfmart.kit.time import utcnow

    now = utcnow()
    async with factory() as s:
        member = Member(
            member_no=f"R{uuid.uuid4().hex[:10]}", name="race", mobile=None,
            registered_at=now, updated_at=now,
        )  # fmt: skip
        s.add(member)
        await s.flush()
        # Two lots, so a winner also walks lots while the losers wait on the row lock.
        await points.award(s, member.id, 60, kind="adjust", actor=ADMIN, reason="race a")
        await points.award(s, member.id, 40, kind="adjust", actor=ADMIN, reason="race b")
        await s.commit()
        member_id = member.id

    async def spend(amount: int) -> bool:
        async with factory() as s:
            m = await s.get(Member, member_id)
            assert m is not None
            try:
                await members.redeem(s, m, amount, reason="race", order_id=None, actor=ADMIN)
            except InsufficientPoints:
                await s.rollback()
                return False
            await s.commit()
            return True

    try:
        # Two spends of the same 100 points: exactly one wins.
        results = await asyncio.gather(spend(100), spend(100))
        assert sorted(results) == [False, True]
        async with factory() as s:
            await points.award(s, member_id, 100, kind="adjust", actor=ADMIN, reason="again")
            await s.commit()
        # Twenty spends of 30 against 100 points: exactly three win, 10 points stay.
        many = await asyncio.gather(*(spend(30) for _ in range(20)))
        assert many.count(True) == 3
        async with factory() as s:
            held = await s.scalar(select(Member.points_balance).where(Member.id == member_id))
            assert held == 10
            assert [m for m in await find_mismatches(s) if m.member_id == member_id] == []
    finally:
        async with factory() as s:
            await s.execute(
                delete(MemberPointsEntry).where(MemberPointsEntry.member_id == member_id)
            )
            await s.execute(delete(MemberPointsLot).where(MemberPointsLot.member_id == member_id))
            await s.execute(
                delete(AuditLog).where(
                    AuditLog.entity_type == "member", AuditLog.entity_id == str(member_id)
                )
            )
            await s.execute(delete(Member).where(Member.id == member_id))
            await s.commit()
        await racers.dispose()
