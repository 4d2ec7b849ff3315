"""The daily report by email, received by a real SMTP server on loopback: orders with known
totals yesterday (and the day before, and the same day last week) in Asia/Shanghai give exactly
these figures in the text, and the chart arrives as a real inline PNG. The users who may read
the analytics get their own stores' figures in their own language, the configured addresses
the chain's. No recipients, or the report switched off, sends nothing. The jobs' schedules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.analytics import basket_tasks, refresh, tasks
from selfmart.analytics.daily_report import yuan
from selfmart.config import Settings
from selfmart.jobs import outbox, runtime
from selfmart.jobs.registry import JOBS, Cron
from selfmart.kit.time import utcnow
from selfmart.models import NotificationDelivery, Store
from tests.analytics.builders import refund, sale
from tests.builders import make_store, make_user
from tests.notify.smtp import SMTPServer, free_port
from tests.orders.builders import make_product
from tests.support import settings_for

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def shanghai(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock time of 2025 in Asia/Shanghai, as UTC."""
    local = datetime(2025, month, day, hour, minute, second, tzinfo=ZoneInfo("Asia/Shanghai"))
    return local.astimezone(UTC)


@pytest.fixture
async def started(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    async def start(settings: Settings) -> None:
        await runtime.start(settings, sessionmaker, schedules=False, inline=True)

    yield start
    await runtime.stop()


async def _orders(session: AsyncSession) -> tuple[Store, Store]:
    square = await make_store(session, name="人民广场店", timezone="Asia/Shanghai")
    xuhui = await make_store(session, name="徐汇店", timezone="Asia/Shanghai")
    both = [square, xuhui]
    cola = await make_product(session, name="可乐", price_fen=350, stores=both)
    chips = await make_product(session, name="薯片", price_fen=800, stores=both)
    # Yesterday, 1 April 2025 in Shanghai.
    first = await sale(session, square, [(cola, 2)], paid_at=shanghai(4, 1, 10), member_id=1)
    await refund(session, first, cola, 1, at=shanghai(4, 1, 12))
    await sale(session, square, [(chips, 1)], paid_at=shanghai(4, 1, 23, 59, 59))
    await sale(session, xuhui, [(cola, 1)], paid_at=shanghai(4, 1, 0, 0, 1), member_id=2)
    # Not sales of yesterday: a cancelled order, and one paid 30 s after midnight.
    await sale(
        session,
        xuhui,
        [(chips, 5)],
        paid_at=None,
        status="cancelled",
        created_at=shanghai(4, 1, 15),
    )
    await sale(session, xuhui, [(chips, 3)], paid_at=shanghai(4, 2, 0, 0, 30))
    # The day before, and the same day last week.
    await sale(session, square, [(chips, 2)], paid_at=shanghai(3, 31, 8))
    await sale(session, xuhui, [(cola, 3)], paid_at=shanghai(3, 25, 18))
    await session.flush()
    await refresh.rebuild(session)  # the builders write orders directly, not through events
    return square, xuhui


EXPECTED_ZH = """销售日报：2025-04-01

【全部门店】
订单数：3（前一天 1，上周同日 1）
销售额：¥18.50（前一天 ¥16.00，上周同日 ¥10.50）
退款：1 / ¥3.50（前一天 0 / ¥0.00，上周同日 0 / ¥0.00）
净销售额：¥15.00（前一天 ¥16.00，上周同日 ¥10.50）
客单价：¥6.17（前一天 ¥16.00，上周同日 ¥10.50）
付款会员：2（前一天 0，上周同日 0）

【人民广场店】
订单数：2（前一天 1，上周同日 0）
销售额：¥15.00（前一天 ¥16.00，上周同日 ¥0.00）
退款：1 / ¥3.50（前一天 0 / ¥0.00，上周同日 0 / ¥0.00）
净销售额：¥11.50（前一天 ¥16.00，上周同日 ¥0.00）
客单价：¥7.50（前一天 ¥16.00，上周同日 ¥0.00）
付款会员：1（前一天 0，上周同日 0）

【徐汇店】
订单数：1（前一天 0，上周同日 1）
销售额：¥3.50（前一天 ¥0.00，上周同日 ¥10.50）
退款：0 / ¥0.00（前一天 0 / ¥0.00，上周同日 0 / ¥0.00）
净销售额：¥3.50（前一天 ¥0.00，上周同日 ¥10.50）
客单价：¥3.50（前一天 ¥0.00，上周同日 ¥10.50）
付款会员：1（前一天 0，上周同日 0）

附图：近 14 天净销售额
"""


def _parts(mail: EmailMessage) -> tuple[str, list[EmailMessage]]:
    body = mail.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    text = body.get_content()
    assert isinstance(text, str)
    # SMTP carries lines ended by CRLF
    return text.replace("\r\n", "\n"), list(mail.iter_attachments())


async def _report(
    started: Any, db_url: str, smtp: SMTPServer, *, to: list[str], users: bool = True
) -> int:
    """Start the runtime sending to `smtp` and run the report of 1 April 2025."""
    await started(
        settings_for(
            db_url,
            smtp_port=smtp.port,
            analytics_daily_report_to=to,
            analytics_daily_report_users=users,
        )
    )
    return int(await tasks.daily_report("2025-04-01"))


async def test_report_arrives_with_exact_figures_and_a_png_chart(
    session: AsyncSession, db_url: str, started: Any
) -> None:
    await _orders(session)
    with SMTPServer() as smtp:
        assert await _report(started, db_url, smtp, to=["boss@example.cn", "ops@example.cn"]) == 2
        assert smtp.inbox.recipients == [["boss@example.cn"], ["ops@example.cn"]]
        mail = smtp.inbox.messages[0]
    assert mail["Subject"] == "销售日报 2025-04-01"
    assert mail["To"] == "boss@example.cn"
    text, attachments = _parts(mail)
    assert text == EXPECTED_ZH
    (image,) = attachments
    assert image.get_content_type() == "image/png"
    assert image.get_content_disposition() == "inline"
    assert image["Content-ID"]
    png = image.get_content()
    assert isinstance(png, bytes)
    assert png.startswith(PNG_MAGIC)
    assert len(png) > 5000
    # Each went through the outbox as a delivery of its own, sent at the first attempt.
    deliveries = (
        await session.scalars(
            select(NotificationDelivery)
            .where(NotificationDelivery.kind == "analytics.daily_report")
            .order_by(NotificationDelivery.id)
        )
    ).all()
    assert [(d.recipient, d.status, d.attempts) for d in deliveries] == [
        ("boss@example.cn", "sent", 1),
        ("ops@example.cn", "sent", 1),
    ]


async def test_report_is_retried_with_its_chart_when_smtp_is_down(
    session: AsyncSession, db_url: str, started: Any
) -> None:
    await _orders(session)
    with SMTPServer() as smtp:
        down = free_port()  # nothing listens here at first
        await started(
            settings_for(
                db_url,
                smtp_port=down,
                outbox_retry_base_seconds=10,
                analytics_daily_report_to=["boss@example.cn"],
            )
        )
        assert await tasks.daily_report("2025-04-01") == 1
        delivery = await session.scalar(
            select(NotificationDelivery).where(
                NotificationDelivery.kind == "analytics.daily_report"
            )
        )
        assert delivery is not None
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert smtp.inbox.messages == []
        # The server comes back; the sweep's retry sends the same report, chart and all.
        runtime.current().settings.smtp_port = smtp.port
        await outbox.sweep(now=utcnow() + timedelta(seconds=11))
        await session.refresh(delivery)
        assert (delivery.status, delivery.attempts) == ("sent", 2)
        (mail,) = smtp.inbox.messages
    text, attachments = _parts(mail)
    assert text == EXPECTED_ZH
    (image,) = attachments
    png = image.get_content()
    assert isinstance(png, bytes)
    assert png.startswith(PNG_MAGIC)


async def test_report_in_english(session: AsyncSession, db_url: str, started: Any) -> None:
    await _orders(session)
    with SMTPServer() as smtp:
        await started(
            settings_for(
                db_url,
                smtp_port=smtp.port,
                analytics_daily_report_to=["boss@example.cn"],
                analytics_daily_report_locale="en",
            )
        )
        assert await tasks.daily_report("2025-04-01") == 1
        mail = smtp.inbox.messages[0]
    assert mail["Subject"] == "Daily sales report 2025-04-01"
    text, _ = _parts(mail)
    assert "[All stores]\nOrders: 3 (day before 1, same day last week 1)\n" in text
    assert "Avg order value: ¥6.17 (day before ¥16.00, same day last week ¥10.50)\n" in text


@pytest.mark.parametrize(
    "overrides",
    [{}, {"analytics_daily_report_to": ["boss@example.cn"], "analytics_daily_report": False}],
    ids=["no-recipients", "switched-off"],
)
async def test_nothing_is_sent_without_recipients_or_when_off(
    session: AsyncSession, db_url: str, started: Any, overrides: dict[str, Any]
) -> None:
    square, _ = await _orders(session)
    # Users with an address but no analytics:read, or who may read it but have no address.
    await make_user(session, role="cashier", stores=[square], email="till@example.cn")
    await make_user(session, role="super_admin")
    if "analytics_daily_report" in overrides:
        await make_user(session, role="super_admin", email="chief@example.cn")
    with SMTPServer() as smtp:
        await started(settings_for(db_url, smtp_port=smtp.port, **overrides))
        assert await tasks.daily_report("2025-04-01") == 0
        assert await tasks.daily_report() == 0
        assert smtp.inbox.messages == []


def test_money_is_formatted_from_fen_exactly() -> None:
    assert [yuan(v) for v in (0, 5, 100, 123_456_789, -350, 10**17 + 1)] == [
        "¥0.00",
        "¥0.05",
        "¥1.00",
        "¥1,234,567.89",
        "-¥3.50",
        "¥1,000,000,000,000,000.01",
    ]


EXPECTED_SQUARE_EN = """Daily sales report: 2025-04-01

[人民广场店]
Orders: 2 (day before 1, same day last week 0)
Sales: ¥15.00 (day before ¥16.00, same day last week ¥0.00)
Refunds: 1 / ¥3.50 (day before 0 / ¥0.00, same day last week 0 / ¥0.00)
Net sales: ¥11.50 (day before ¥16.00, same day last week ¥0.00)
Avg order value: ¥7.50 (day before ¥16.00, same day last week ¥0.00)
Paying members: 1 (day before 0, same day last week 0)

Chart: net sales of the last 14 days
"""


async def test_users_who_manage_the_stores_get_their_own_stores_figures(
    session: AsyncSession, db_url: str, started: Any
) -> None:
    """Super admins get the chain's report; a store admin only their stores' (one store: no
    total; two: a total of just those), in their language; users without analytics:read, an
    email address or an active account get nothing; a configured address that is also a
    user's gets the chain's report once."""
    square, xuhui = await _orders(session)
    chief = await make_user(session, role="super_admin", email="chief@example.cn")
    boss = await make_user(session, role="super_admin", email="Boss@example.cn")
    one = await make_user(
        session, role="admin", stores=[square], email="sq@example.cn", locale="en"
    )
    two = await make_user(session, role="admin", stores=[square, xuhui], email="two@example.cn")
    await make_user(session, role="admin", stores=[square])  # no email address
    await make_user(session, role="admin", stores=[], email="nostore@example.cn")
    await make_user(
        session, role="admin", stores=[square], email="gone@example.cn", is_active=False
    )
    await make_user(session, role="cashier", stores=[square], email="till@example.cn")
    await make_user(session, role="finance", email="money@example.cn")
    with SMTPServer() as smtp:
        assert await _report(started, db_url, smtp, to=["boss@example.cn", "ops@example.cn"]) == 5
        mails = {str(m["To"]): m for m in smtp.inbox.messages}
    assert sorted(mails) == sorted(
        ["boss@example.cn", "ops@example.cn", "chief@example.cn", "sq@example.cn", "two@example.cn"]
    )
    texts = {to: _parts(mail)[0] for to, mail in mails.items()}
    for to in ("boss@example.cn", "ops@example.cn", "chief@example.cn"):
        assert texts[to] == EXPECTED_ZH, to
    assert mails["sq@example.cn"]["Subject"] == "Daily sales report 2025-04-01"
    assert texts["sq@example.cn"] == EXPECTED_SQUARE_EN
    assert texts["two@example.cn"] == EXPECTED_ZH.replace("【全部门店】", "【我的门店（2 家）】")
    # Each chart is of the recipient's own stores.
    charts = {to: _parts(mail)[1][0].get_content() for to, mail in mails.items()}
    assert all(isinstance(png, bytes) and png.startswith(PNG_MAGIC) for png in charts.values())
    assert charts["sq@example.cn"] != charts["chief@example.cn"]
    deliveries = (
        await session.scalars(
            select(NotificationDelivery).where(
                NotificationDelivery.kind == "analytics.daily_report"
            )
        )
    ).all()
    assert sorted((d.recipient, d.user_id, d.status) for d in deliveries) == sorted(
        [
            ("boss@example.cn", None, "sent"),
            ("ops@example.cn", None, "sent"),
            ("chief@example.cn", chief.id, "sent"),
            ("sq@example.cn", one.id, "sent"),
            ("two@example.cn", two.id, "sent"),
        ]
    )
    assert boss.id not in {d.user_id for d in deliveries}


async def test_users_are_left_out_when_the_setting_says_so(
    session: AsyncSession, db_url: str, started: Any
) -> None:
    await _orders(session)
    await make_user(session, role="super_admin", email="chief@example.cn")
    with SMTPServer() as smtp:
        assert await _report(started, db_url, smtp, to=["ops@example.cn"], users=False) == 1
        assert smtp.inbox.recipients == [["ops@example.cn"]]


@pytest.mark.parametrize(
    ("name", "expr"),
    [(tasks.DAILY_REPORT, "30 7 * * *"), (basket_tasks.NIGHTLY, "0 3 * * *")],
    ids=["daily-report", "nightly-baskets"],
)
def test_the_jobs_are_scheduled(name: str, expr: str) -> None:
    registered = JOBS[name]
    assert [s.expr for s in registered.schedules if isinstance(s, Cron)] == [expr]
