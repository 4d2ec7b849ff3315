"""An alert's life: the rule's duration is respected (the services' clock moved by hand), a
condition that holds across three runs opens ONE alert and sends ONE email (a real SMTP server
on loopback), a cleared condition resolves it and says so, reminders follow the rule and stop
once someone acknowledged it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.alerts import service
from selfmart.alerts.schemas import AlertRuleUpdate
from selfmart.config import Settings
from selfmart.jobs import runtime
from selfmart.kit import aftercommit
from selfmart.kit.time import UTC, clock_at
from selfmart.models import Message, NotificationDelivery
from selfmart.notify.service import TEXT_KEY
from tests.builders import make_store, make_user
from tests.notify.smtp import SMTPServer
from tests.support import settings_for
from tests.terminals.builders import make_terminal

from .support import ACTOR, alerts_of, make_rule, run

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


@pytest.fixture
async def started(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    async def start(settings: Settings) -> None:
        await runtime.start(settings, sessionmaker, schedules=False, inline=True)

    yield start
    await runtime.stop()


async def _commit(session: AsyncSession, at: datetime) -> None:
    """What the job's transaction does after the run: commit, then the after-commit work."""
    with clock_at(at):
        await session.flush()
        await aftercommit.run_pending(session)


async def _offline_terminal(session: AsyncSession, minutes: float = 30) -> Any:
    store = await make_store(session, name="徐汇店")
    return store, await make_terminal(
        session,
        store,
        name="收银一号机",
        status="active",
        last_seen_at=T0 - timedelta(minutes=minutes),
    )


async def test_the_duration_is_respected(session: AsyncSession) -> None:
    store, _terminal = await _offline_terminal(session)
    rule = await make_rule(
        session, "terminal_offline_minutes", 10, store_id=store.id, duration_seconds=300
    )
    await run(session, T0)
    (alert,) = await alerts_of(session, rule)
    assert (alert.status, alert.since, alert.fired_at) == ("pending", T0, None)
    await run(session, T0 + timedelta(seconds=299))
    assert alert.status == "pending"
    listed, total = await service.list_alerts(session, ACTOR, _page())
    assert all(a.rule_id != rule for a in listed)  # pending is not an alert yet
    await run(session, T0 + timedelta(seconds=300))
    assert (alert.status, alert.fired_at) == ("open", T0 + timedelta(seconds=300))
    assert alert.notifications == 1


async def test_a_condition_that_clears_before_its_duration_leaves_nothing(
    session: AsyncSession,
) -> None:
    store, terminal = await _offline_terminal(session)
    rule = await make_rule(
        session, "terminal_offline_minutes", 10, store_id=store.id, duration_seconds=300
    )
    await run(session, T0)
    terminal.last_seen_at = T0 + timedelta(seconds=100)  # a heartbeat
    await session.flush()
    await run(session, T0 + timedelta(seconds=120))
    assert await alerts_of(session, rule) == []
    n = await session.scalar(
        select(func.count()).select_from(Message).where(Message.kind.like("alert.%"))
    )
    assert n == 0


async def test_three_runs_one_alert_one_email_then_resolved(
    session: AsyncSession, db_url: str, started: Any
) -> None:
    store, terminal = await _offline_terminal(session)
    boss = await make_user(session, email="night-duty@example.cn", display_name="值班")
    with SMTPServer() as smtp:
        await started(settings_for(db_url, smtp_port=smtp.port))
        rule = await make_rule(
            session,
            "terminal_offline_minutes",
            10,
            store_id=store.id,
            severity="critical",
            channels=["in_app", "email"],
            user_ids=[boss.id],
        )
        for minute in range(3):
            at = T0 + timedelta(minutes=minute)
            await run(session, at)
            await _commit(session, at)
        (alert,) = await alerts_of(session, rule)
        assert (alert.status, alert.fired_at, alert.notifications) == ("open", T0, 1)
        assert alert.fired_value == 30
        assert alert.last_value == 32  # the latest reading
        assert alert.subject == f"terminal:{terminal.id}"
        assert smtp.inbox.recipients == [["night-duty@example.cn"]]
        mail = smtp.inbox.messages[0]
        assert "【严重】" in str(mail["Subject"])
        assert "收银一号机" in str(mail["Subject"])

        terminal.last_seen_at = T0 + timedelta(minutes=3)  # it came back
        await session.flush()
        at = T0 + timedelta(minutes=4)
        report = await run(session, at)
        await _commit(session, at)
        assert report.resolved == 1
        assert (alert.status, alert.resolved_at, alert.resolved_by) == ("resolved", at, None)
        assert len(smtp.inbox.messages) == 2
        assert "【已恢复】" in str(smtp.inbox.messages[1]["Subject"])

        # gone again: a new episode, a new alert
        at = T0 + timedelta(minutes=20)
        await run(session, at)
        await _commit(session, at)
        assert [a.status for a in await alerts_of(session, rule)] == ["resolved", "open"]
        assert len(smtp.inbox.messages) == 3

    messages = list(
        (
            await session.scalars(
                select(Message).where(Message.user_id == boss.id).order_by(Message.id)
            )
        ).all()
    )
    assert [m.kind for m in messages] == ["alert.fired", "alert.resolved", "alert.fired"]
    assert messages[0].data[TEXT_KEY]["title"]["key"] == "alerts.fired"
    assert messages[0].link == f"/alerts?alert={alert.id}"
    deliveries = await session.scalar(
        select(func.count())
        .select_from(NotificationDelivery)
        .where(NotificationDelivery.recipient == "night-duty@example.cn")
    )
    assert deliveries == 3


async def test_reminders_follow_the_rule_and_stop_when_acknowledged(
    session: AsyncSession,
) -> None:
    store, _terminal = await _offline_terminal(session)
    rule = await make_rule(
        session, "terminal_offline_minutes", 10, store_id=store.id, renotify_minutes=30
    )
    await run(session, T0)
    (alert,) = await alerts_of(session, rule)
    await run(session, T0 + timedelta(minutes=29))
    assert alert.notifications == 1
    await run(session, T0 + timedelta(minutes=30))
    assert alert.notifications == 2
    with clock_at(T0 + timedelta(minutes=31)):
        read = await service.acknowledge(session, alert.id, actor=ACTOR, note="技术员已出发")
    assert (read.status, read.acknowledged_by) == ("acknowledged", ACTOR.name)
    await run(session, T0 + timedelta(minutes=90))
    assert (alert.status, alert.notifications) == ("acknowledged", 2)


async def test_resolved_by_hand_while_it_holds_opens_again_later(session: AsyncSession) -> None:
    store, _terminal = await _offline_terminal(session)
    rule = await make_rule(
        session, "terminal_offline_minutes", 10, store_id=store.id, duration_seconds=120
    )
    await run(session, T0)
    await run(session, T0 + timedelta(minutes=2))
    (alert,) = await alerts_of(session, rule)
    with clock_at(T0 + timedelta(minutes=3)):
        await service.resolve(session, alert.id, actor=ACTOR, note="重启了")
    assert (alert.status, alert.resolved_by) == ("resolved", ACTOR.name)
    await run(session, T0 + timedelta(minutes=4))  # pending again, not fired yet
    assert [a.status for a in await alerts_of(session, rule)] == ["resolved", "pending"]
    await run(session, T0 + timedelta(minutes=6))
    assert [a.status for a in await alerts_of(session, rule)] == ["resolved", "open"]


async def test_disabling_a_rule_resolves_its_alerts(session: AsyncSession) -> None:
    store, _terminal = await _offline_terminal(session)
    rule = await make_rule(session, "terminal_offline_minutes", 10, store_id=store.id)
    await run(session, T0)
    await service.update_rule(session, rule, AlertRuleUpdate(enabled=False), actor=ACTOR)
    (alert,) = await alerts_of(session, rule)
    assert (alert.status, alert.resolved_by) == ("resolved", ACTOR.name)
    await run(session, T0 + timedelta(minutes=1))
    assert len(await alerts_of(session, rule)) == 1


def _page() -> Any:
    from selfmart.kit.pagination import PageParams

    return PageParams(page=1, size=200)
