"""Reconciliation's background jobs: every morning, yesterday's bill of every enabled platform
account is downloaded and reconciled (each account in its own transaction), and the bills of
the week before that no run covers yet (the server was down at the hour) too; every hour,
differences left open for more than a day are alerted."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor, job_actor
from selfmart.jobs import runtime
from selfmart.jobs.registry import Cron, task
from selfmart.kit.time import utcnow
from selfmart.models import PaymentAccount, ReconciliationRun
from selfmart.reconciliation import alerts, reports, runs
from selfmart.reconciliation.bills import BEIJING

DAILY = "reconciliation.daily"
ALERTS = "reconciliation.alert_unresolved"
#: how many days before yesterday the daily job looks back for bills never reconciled
CATCH_UP_DAYS = 7


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


async def reconcile_missing(
    session: AsyncSession,
    first: date,
    last: date,
    *,
    actor: Actor,
    since_opened: bool = True,
    commit: bool = True,
) -> int:
    """The bills from `first` to `last` of every enabled platform account that no run covers
    yet (trade; WeChat Pay's fund flow too), oldest first, each committed on its own unless
    `commit` is false. With `since_opened`, only the days since the account was set up here
    (its earlier trades are not ours to match). Returns how many bills were reconciled."""
    done = {
        tuple(r)
        for r in (
            await session.execute(
                select(
                    ReconciliationRun.account_id,
                    ReconciliationRun.bill_date,
                    ReconciliationRun.kind,
                ).where(ReconciliationRun.bill_date.between(first, last))
            )
        ).all()
    }
    count = 0
    for account in await reports.accounts_to_reconcile(session):
        start = first
        if since_opened:
            start = max(first, account.created_at.astimezone(BEIJING).date())
        for offset in range((last - start).days + 1):
            day = start + timedelta(days=offset)
            for kind in runs.KINDS.get(account.channel, ("trade",)):
                if (account.id, day, kind) in done:
                    continue
                await runs.reconcile(session, account, day, kind, actor=actor)
                count += 1
                if commit:
                    await session.commit()
    return count


@task(DAILY, schedule=[Cron("30 10 * * *", timezone="Asia/Shanghai")])
async def daily() -> int:
    """10:30 every day (the platforms publish the day before's bills by 10:00 Beijing time):
    yesterday's bills, then the week's before that were never reconciled. Returns how many
    accounts yesterday's run covered."""
    actor = job_actor(DAILY)
    day = yesterday()
    async with runtime.sessionmaker()() as session:
        covered = len(await reconcile_accounts(session, day, actor=actor))
        await reconcile_missing(
            session, day - timedelta(days=CATCH_UP_DAYS), day - timedelta(days=1), actor=actor
        )
    return covered


@task(ALERTS, schedule=[Cron("0 * * * *", timezone="Asia/Shanghai")])
async def alert_unresolved() -> int:
    """Every hour: differences open more than a day are told about (each once)."""
    async with runtime.transaction() as session:
        return await alerts.alert_unresolved(session)
