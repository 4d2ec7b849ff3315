"""Differences nobody worked a day after they were found are told about once, in-app and by
email (a real SMTP server on loopback) to whoever may resolve them; a rerun of the same bill
does not tell again, and a difference resolved in time is never told."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.config import Settings
from selfmart.jobs import runtime
from selfmart.jobs.registry import JOBS, Cron
from selfmart.kit import aftercommit
from selfmart.kit.time import utcnow
from selfmart.models import Message, ReconciliationItem
from selfmart.notify.service import TEXT_KEY
from selfmart.reconciliation import alerts, differences, runs, tasks
from tests.builders import make_user
from tests.notify.smtp import SMTPServer
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_reconcile import ACTOR, open_shop, today
from tests.support import settings_for


@pytest.fixture
async def started(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    async def start(settings: Settings) -> None:
        await runtime.start(settings, sessionmaker, schedules=False, inline=True)

    yield start
    await runtime.stop()


async def _commit(session: AsyncSession) -> None:
    await session.flush()
    await aftercommit.run_pending(session)


async def test_open_differences_are_alerted_once_a_day_on(
    client: httpx.AsyncClient,
    session: AsyncSession,
    db_url: str,
    started: Any,
    wechat: Sandbox,
) -> None:
    shop = await open_shop(session, wechat)
    off = await shop.paid(client, session, 1)
    worked = await shop.paid(client, session, 2)
    off.amount_fen, worked.amount_fen = 360, 710
    await session.flush()
    boss = await make_user(session, role="super_admin", email="finance@example.cn")
    # A store's admin does not see a chain account's bill, so is not told about it.
    await make_user(session, role="admin", stores=[shop.store], email="shop@example.cn")
    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert run.difference_count == 2
    (to_work,) = await session.scalars(
        select(ReconciliationItem.id).where(
            ReconciliationItem.run_id == run.id,
            ReconciliationItem.out_trade_no == worked.out_trade_no,
        )
    )
    await differences.resolve(session, to_work, "accept", "checked in time", actor=ACTOR)

    with SMTPServer() as smtp:
        await started(settings_for(db_url, smtp_port=smtp.port))
        # Found today: not a day old yet.
        assert await alerts.alert_unresolved(session) == 0
        later = utcnow() + timedelta(days=2)
        assert await alerts.alert_unresolved(session, now=later) == 1
        assert smtp.inbox.messages == []  # nothing leaves before commit
        await _commit(session)
        assert smtp.inbox.recipients == [["finance@example.cn"]]
        mail = smtp.inbox.messages[0]
        assert "1 条差异超过一天未处理" in str(mail["Subject"])
        body = mail.get_content()
        assert off.out_trade_no is not None
        assert off.out_trade_no in body
        assert "金额不符" in body
        assert worked.out_trade_no not in body
        assert f"/reconciliation/day/{today().isoformat()}" in body

        # Told once: not again by the next hour's job, nor after a rerun of the same bill.
        assert await alerts.alert_unresolved(session, now=later + timedelta(hours=1)) == 0
        await runs.reconcile(session, shop.account, today(), actor=ACTOR)
        assert await alerts.alert_unresolved(session, now=later + timedelta(hours=2)) == 0
        await _commit(session)
        assert len(smtp.inbox.messages) == 1

    (message,) = await session.scalars(select(Message).where(Message.user_id == boss.id))
    assert message.kind == alerts.KIND
    assert message.link == f"/reconciliation/day/{today().isoformat()}"
    text = message.data[TEXT_KEY]
    assert text["title"]["key"] == "reconciliation.unresolvedTitle"
    assert [x["key"] for x in text["lines"]] == ["reconciliation.amount_differs"]


def test_the_alert_job_runs_every_hour() -> None:
    job = JOBS[tasks.ALERTS]
    assert [s.expr for s in job.schedules if isinstance(s, Cron)] == ["0 * * * *"]
