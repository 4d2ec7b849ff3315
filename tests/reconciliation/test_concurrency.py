"""Two first runs of the same bill at once (real PostgreSQL connections): one run, reconciled
twice, never a 500 on the unique key. Data is committed and removed afterwards."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.db import make_sessionmaker
from selfmart.iam.actor import job_actor
from selfmart.models import AuditLog, PaymentAccount, ReconciliationRun
from selfmart.reconciliation import runs
from tests.payments.builders import sandbox_account
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_reconcile import today


@pytest.mark.postgres_only
async def test_two_first_runs_at_once_make_one_run(
    engine: AsyncEngine, backend: str, wechat: Sandbox
) -> None:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections: PostgreSQL only")
    factory = make_sessionmaker(engine)
    async with factory() as s:
        account = await sandbox_account(s, None, wechat.credentials())
        await s.commit()
        account_id = account.id
    day = today() - timedelta(days=4)

    async def one(name: str) -> tuple[int, int]:
        async with factory() as s:
            acc = await s.get(PaymentAccount, account_id)
            assert acc is not None
            run = await runs.reconcile(s, acc, day, actor=job_actor(name))
            ids = (run.id, run.attempts)
            await s.commit()
            return ids

    try:
        first, second = await asyncio.gather(one("a"), one("b"))
        assert first[0] == second[0]
        assert sorted([first[1], second[1]]) == [1, 2]
        async with factory() as s:
            rows = (
                await s.scalars(
                    select(ReconciliationRun).where(ReconciliationRun.account_id == account_id)
                )
            ).all()
            assert [(r.status, r.attempts) for r in rows] == [("no_bill", 2)]
    finally:
        async with factory() as s:
            ids = [
                str(i)
                for i in await s.scalars(
                    select(ReconciliationRun.id).where(ReconciliationRun.account_id == account_id)
                )
            ]
            await s.execute(
                delete(AuditLog).where(
                    AuditLog.entity_type == "reconciliation_run", AuditLog.entity_id.in_(ids)
                )
            )
            await s.execute(
                delete(ReconciliationRun).where(ReconciliationRun.account_id == account_id)
            )
            await s.execute(delete(PaymentAccount).where(PaymentAccount.id == account_id))
            await s.commit()
