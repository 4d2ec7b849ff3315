"""notify.send over email, against a real SMTP server on loopback: the message arrives with
the right subject, recipient and UTF-8 Chinese body; a server that is down is retried, then the
delivery is recorded as failed; the SMTP password never reaches a log or a record."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.config import Settings
from selfmart.jobs import outbox, runtime
from selfmart.kit import aftercommit
from selfmart.kit.time import utcnow
from selfmart.models import Message, NotificationAttempt, NotificationDelivery, OutboxEvent
from selfmart.notify import service as notify
from tests.builders import make_user
from tests.support import settings_for

from .smtp import SMTPServer, free_port

TITLE = "库存不足：可口可乐 500ml"
BODY = "上海徐汇店 可口可乐 500ml 库存 3，低于阈值 10。"


async def _commit(session: AsyncSession) -> None:
    """What the request scope does after its handler: commit, then the after-commit work. The
    test's session stays inside the test's transaction (a flush), so nothing outlives it."""
    await session.flush()
    await aftercommit.run_pending(session)


async def _attempts(session: AsyncSession, delivery_id: int) -> list[NotificationAttempt]:
    rows = await session.scalars(
        select(NotificationAttempt)
        .where(NotificationAttempt.delivery_id == delivery_id)
        .order_by(NotificationAttempt.id)
    )
    return list(rows.all())


@pytest.fixture
async def started(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Any]:
    """Start the (inline) runtime with the test's settings; stopped at teardown."""

    async def start(settings: Settings) -> None:
        await runtime.start(settings, sessionmaker, schedules=False, inline=True)

    yield start
    await runtime.stop()


async def test_email_arrives_with_subject_recipient_and_chinese_body(
    session: AsyncSession, db_url: str, started: Any
) -> None:
    with SMTPServer() as smtp:
        settings = settings_for(db_url, smtp_port=smtp.port)
        await started(settings)
        user = await make_user(session, email="manager@example.cn", display_name="王店长")
        sent = await notify.send(
            session,
            kind="stock.low",
            title=TITLE,
            body=BODY,
            user_ids=[user.id],
            store_id=None,
            link="/alerts/12",
        )
        assert [d.channel for d in sent.deliveries] == ["email"]
        assert smtp.inbox.messages == []  # nothing leaves before commit
        await _commit(session)

        assert smtp.inbox.recipients == [["manager@example.cn"]]
        mail = smtp.inbox.messages[0]
    assert mail["To"] == "manager@example.cn"
    assert mail["From"] == settings.smtp_sender
    assert mail["Subject"] == TITLE
    content = mail.get_content()
    assert BODY in content
    assert "http://127.0.0.1:8000/alerts/12" in content
    assert mail.get_content_charset() == "utf-8"

    delivery = sent.deliveries[0]
    await session.refresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 1, None)
    assert delivery.sent_at is not None
    assert delivery.user_id == user.id
    assert [a.success for a in await _attempts(session, delivery.id)] == [True]
    (message,) = sent.messages  # the in-app copy
    assert (message.user_id, message.title, message.link) == (user.id, TITLE, "/alerts/12")


async def test_smtp_down_is_retried_then_recorded_as_failed(
    session: AsyncSession, db_url: str, started: Any
) -> None:
    port = free_port()  # nothing listens here
    settings = settings_for(
        db_url, smtp_port=port, outbox_max_attempts=3, outbox_retry_base_seconds=10
    )
    await started(settings)
    user = await make_user(session, email="ops@example.cn")
    sent = await notify.send(
        session, kind="stock.low", title=TITLE, body=BODY, user_ids=[user.id], channels=["email"]
    )
    await _commit(session)  # attempt 1, right after commit
    delivery = sent.deliveries[0]
    await session.refresh(delivery)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error is not None
    assert delivery.last_error.startswith(f"DeliveryFailed: SMTP 127.0.0.1:{port}: ")
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at > utcnow() + timedelta(seconds=5)

    await outbox.sweep(now=utcnow() + timedelta(seconds=11))  # attempt 2
    await session.refresh(delivery)
    assert (delivery.status, delivery.attempts) == ("pending", 2)
    await outbox.sweep(now=utcnow() + timedelta(minutes=5))  # attempt 3, the last
    await session.refresh(delivery)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    attempts = await _attempts(session, delivery.id)
    assert [a.success for a in attempts] == [False, False, False]
    assert all(a.error and f"127.0.0.1:{port}" in a.error for a in attempts)
    event = await session.scalar(
        select(OutboxEvent).where(
            OutboxEvent.topic == notify.DELIVER_TOPIC,
            OutboxEvent.payload["delivery_id"].as_integer() == delivery.id,
        )
    )
    assert event is not None
    assert (event.status, event.attempts) == ("failed", 3)
    assert await outbox.sweep(now=utcnow() + timedelta(days=2)) == 0  # given up for good


async def test_a_retry_delivers_once_the_server_is_back(
    session: AsyncSession, db_url: str, started: Any
) -> None:
    port = free_port()
    await started(settings_for(db_url, smtp_port=port))
    user = await make_user(session, email="back@example.cn")
    sent = await notify.send(
        session, kind="k", title="恢复", body="正文", user_ids=[user.id], channels=["email"]
    )
    await _commit(session)
    with SMTPServer(port) as smtp:
        await outbox.sweep(now=utcnow() + timedelta(hours=1))
        assert smtp.inbox.recipients == [["back@example.cn"]]
    delivery = sent.deliveries[0]
    await session.refresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, None)
    assert [a.success for a in await _attempts(session, delivery.id)] == [False, True]


async def test_smtp_password_never_reaches_logs_or_records(
    session: AsyncSession, db_url: str, started: Any, caplog: pytest.LogCaptureFixture
) -> None:
    password = "s3cr3t-P@ss-9137"
    caplog.set_level(logging.DEBUG)
    with SMTPServer(refuse_auth=True) as smtp:
        settings = settings_for(
            db_url,
            smtp_port=smtp.port,
            smtp_username="shop",
            smtp_password=SecretStr(password),
            outbox_max_attempts=1,
        )
        await started(settings)
        user = await make_user(session, email="a@example.cn")
        sent = await notify.send(
            session, kind="k", title="t", body="b", user_ids=[user.id], channels=["email"]
        )
        await _commit(session)
        assert smtp.inbox.messages == []
    delivery = sent.deliveries[0]
    await session.refresh(delivery)
    assert delivery.status == "failed"
    assert delivery.last_error is not None
    assert "535" in delivery.last_error  # the server's refusal is what is recorded
    encoded = base64.b64encode(password.encode()).decode()
    records = [delivery.last_error, *(a.error or "" for a in await _attempts(session, delivery.id))]
    for text in [caplog.text, *records, repr(settings), str(settings.model_dump())]:
        assert password not in text
        assert encoded not in text


async def test_users_without_address_or_inactive_are_skipped(
    session: AsyncSession, db_url: str, started: Any
) -> None:
    with SMTPServer() as smtp:
        await started(settings_for(db_url, smtp_port=smtp.port))
        reachable = await make_user(session, email="yes@example.cn")
        no_email = await make_user(session, email=None)
        inactive = await make_user(session, email="gone@example.cn", is_active=False)
        sent = await notify.send(
            session,
            kind="k",
            title="t",
            body="b",
            user_ids=[reachable.id, no_email.id, inactive.id, reachable.id, 999_999],
        )
        await _commit(session)
        assert smtp.inbox.recipients == [["yes@example.cn"]]
    assert sorted(m.user_id for m in sent.messages) == sorted([reachable.id, no_email.id])
    assert [d.recipient for d in sent.deliveries] == ["yes@example.cn"]
    assert sent.unreachable == [(no_email.id, "email")]


async def test_rolled_back_send_sends_nothing(
    session: AsyncSession, db_url: str, started: Any
) -> None:
    with SMTPServer() as smtp:
        await started(settings_for(db_url, smtp_port=smtp.port))
        user = await make_user(session, email="never@example.cn")
        request_tx = await session.begin_nested()  # the request's transaction
        await notify.send(session, kind="k", title="t", body="b", user_ids=[user.id])
        aftercommit.discard(session)  # what the request scope does on error
        await request_tx.rollback()
        await outbox.sweep(now=utcnow() + timedelta(days=1))
        assert smtp.inbox.messages == []
    for model in (NotificationDelivery, Message):
        rows = await session.scalars(select(model).where(model.user_id == user.id))
        assert rows.all() == []


async def test_unknown_channel_is_refused(session: AsyncSession) -> None:
    with pytest.raises(LookupError, match="no notification channel 'fax'"):
        await notify.send(session, kind="k", title="t", body="b", channels=["fax"])


async def test_only_a_user_no_channel_reaches_is_logged_as_a_warning(
    session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    no_email = await make_user(session, email=None)
    with caplog.at_level(logging.DEBUG, logger="selfmart.notify.service"):
        # The message centre reaches them: a missing email address is routine.
        await notify.send(session, kind="k", title="t", body="b", user_ids=[no_email.id])
        assert not [r for r in caplog.records if r.levelno >= logging.INFO]
        # Email alone: nothing reaches them, which an operator must hear about.
        sent = await notify.send(
            session, kind="k", title="t", body="b", user_ids=[no_email.id], channels=["email"]
        )
    assert sent.messages == []
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"[{no_email.id}]" in warning.getMessage()
