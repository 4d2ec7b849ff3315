"""`selfmart check-points` against a real database: success when every balance is its ledger,
then a corrupted balance is named and the command exits non-zero. The data is committed (the
command opens its own connection) and removed afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.db import make_sessionmaker
from selfmart.kit.time import utcnow
from selfmart.members import points
from selfmart.models import Member, MemberPointsEntry, MemberPointsLot

from .helpers import ADMIN


def _check(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SELFMART_DATABASE_URL": url, "SELFMART_LOG_LEVEL": "WARNING"}
    return subprocess.run(  # noqa: ASYNC221  (a CLI run to completion is the point)
        [sys.executable, "-m", "selfmart.cli", "check-points"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_check_points_names_a_member_whose_balance_is_not_the_ledger(
    engine: AsyncEngine,
) -> None:
    factory = make_sessionmaker(engine)
    no = f"CHK{uuid.uuid4().hex[:8]}"
    now = utcnow()
    async with factory() as s:
        member = Member(member_no=no, name="check", registered_at=now, updated_at=now)
        s.add(member)
        await s.flush()
        await points.award(s, member.id, 70, kind="adjust", actor=ADMIN, reason="check")
        await points.spend(s, member.id, 20, kind="redeem", actor=ADMIN)
        await s.commit()
        member_id = member.id
    url = engine.url.render_as_string(hide_password=False)
    try:
        ok = _check(url)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "points balances match the ledger" in ok.stdout
        async with factory() as s:
            await s.execute(update(Member).where(Member.id == member_id).values(points_balance=51))
            await s.commit()
        bad = _check(url)
        assert bad.returncode == 1
        assert f"MISMATCH member={no} id={member_id} balance=51 ledger=50 lots=50" in bad.stdout
    finally:
        async with factory() as s:
            await s.execute(
                delete(MemberPointsEntry).where(MemberPointsEntry.member_id == member_id)
            )
            await s.execute(delete(MemberPointsLot).where(MemberPointsLot.member_id == member_id))
            await s.execute(delete(Member).where(Member.id == member_id))
            await s.commit()
