"""`selfmart reconcile` against a real database and the WeChat Pay sandbox: one account's day
reconciled (a day without trade is "no bill"), a malformed date named. The account is committed
(the command opens its own connection) and removed afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.db import make_sessionmaker
from selfmart.models import AuditLog, PaymentAccount, ReconciliationRun
from tests.payments.builders import sandbox_account
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_reconcile import today


def _reconcile(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SELFMART_DATABASE_URL": url, "SELFMART_LOG_LEVEL": "WARNING"}
    return subprocess.run(  # noqa: ASYNC221  (a CLI run to completion is the point)
        [sys.executable, "-m", "selfmart.cli", "reconcile", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_reconcile_one_account_and_day(engine: AsyncEngine, wechat: Sandbox) -> None:
    factory = make_sessionmaker(engine)
    async with factory() as s:
        account = await sandbox_account(s, None, wechat.credentials())
        await s.commit()
        account_id = account.id
    url = engine.url.render_as_string(hide_password=False)
    day = today() - timedelta(days=2)
    try:
        done = _reconcile(url, "--date", day.isoformat(), "--account", str(account_id))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"account={account_id} date={day} status=no_bill" in done.stdout
        bad = _reconcile(url, "--date", "2026-02-30")
        assert bad.returncode == 2
        assert "--date" in bad.stderr
        async with factory() as s:
            run = await s.scalar(
                select(ReconciliationRun).where(ReconciliationRun.account_id == account_id)
            )
            assert run is not None
            assert (run.bill_date, run.status, run.actor_name) == (day, "no_bill", "cli.reconcile")
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
