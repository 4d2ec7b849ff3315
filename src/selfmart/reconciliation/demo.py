"""Demo reconciliation: `seed-demo` reconciles each past day of its history against the bills
of the payment sandboxes (served in this process while the demo is seeded), so that the
console's reconciliation calendar opens on days already matched, as a chain's would after a
month of the daily job. Days already run are left as they are: seeding again adds nothing."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.models import ReconciliationRun
from selfmart.reconciliation import reports, runs
from selfmart.reconciliation.bills import BEIJING


async def reconcile_past_days(session: AsyncSession, days: int, *, actor: Actor) -> int:
    """Every enabled platform account's bills of the `days` Beijing days before today that
    have not been reconciled yet (trade bills; WeChat Pay's fund flow too). Returns how many
    bills were reconciled."""
    today = utcnow().astimezone(BEIJING).date()
    first = today - timedelta(days=days)
    done: set[tuple[int, date, str]] = {
        (a, d, k)
        for a, d, k in (
            await session.execute(
                select(
                    ReconciliationRun.account_id,
                    ReconciliationRun.bill_date,
                    ReconciliationRun.kind,
                ).where(ReconciliationRun.bill_date >= first)
            )
        ).all()
    }
    count = 0
    for account in await reports.accounts_to_reconcile(session):
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            for kind in runs.KINDS.get(account.channel, ("trade",)):
                if (account.id, day, kind) in done:
                    continue
                await runs.reconcile(session, account, day, kind, actor=actor)
                count += 1
    return count
