"""Reconciliation's background jobs: every morning, yesterday's bill of every enabled platform
account is downloaded and reconciled (each account in its own transaction); every hour,
differences left open for more than a day are alerted."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor, job_actor
from selfmart.jobs import runtime
from selfmart.jobs.registry import Cron, task
from selfmart.kit.time import utcnow
from selfmart.models import PaymentAccount
from selfmart.reconciliation import alerts, reports, runs
from selfmart.reconciliation.bills import BEIJING

DAILY = "reconciliation.daily"
ALERTS = "reconciliation.alert_unresolved"


def yesterday() -> date:
    """The platforms' yesterday (their bill days are Beijing days)."""
    return utcnow().astimezone(BEIJING).date() - timedelta(days=1)


async def reconcile_accounts(
    session: AsyncSession, day: date, *, actor: Actor, account_id: int | None = None
) -> list[tuple[int, str, str | None]]:
    """Reconcile `day` for every enabled platform account (or the one named), each of its
    bills (trade; WeChat Pay's fund flow too) committed on its own: (account id, trade run
    status, refusal) per account."""
    ids = [a.id for a in await reports.accounts_to_reconcile(session, account_id)]
    results = []
    for id_ in ids:
        account = await session.get(PaymentAccount, id_)
        if account is None:
            continue
        for kind in runs.KINDS.get(account.channel, ("trade",)):
            run = await runs.reconcile(session, account, day, kind, actor=actor)
            if kind == "trade":
                results.append((id_, run.status, run.last_error))
            await session.commit()
    return results


@task(DAILY, schedule=[Cron("30 10 * * *", timezone="Asia/Shanghai")])
async def daily() -> int:
    """10:30 every day (the platforms publish the day before's bills by 10:00 Beijing time)."""
    async with runtime.sessionmaker()() as session:
        return len(await reconcile_accounts(session, yesterday(), actor=job_actor(DAILY)))


@task(ALERTS, schedule=[Cron("0 * * * *", timezone="Asia/Shanghai")])
async def alert_unresolved() -> int:
    """Every hour: differences open more than a day are told about (each once)."""
    async with runtime.transaction() as session:
        return await alerts.alert_unresolved(session)
