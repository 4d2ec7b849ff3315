"""The daily report to managers by email: yesterday's headline figures for the chain and each
store, with the day before and the same day last week beside them, and a chart of the last 14
days' net sales as an inline PNG. Figures come from the same summaries as the dashboard."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import scope as scopes
from selfmart.analytics.sales import DayTable, Figures
from selfmart.config import Settings
from selfmart.iam.actor import job_actor
from selfmart.models import Store
from selfmart.notify import service as notify
from selfmart.notify.channels import InlineImage

CHART_DAYS = 14
KIND = "analytics.daily_report"
ACTOR = job_actor(KIND)

TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "subject": "销售日报 {day}",
        "title": "销售日报：{day}",
        "chain": "全部门店",
        "orders": "订单数",
        "sales": "销售额",
        "refunds": "退款",
        "net": "净销售额",
        "aov": "客单价",
        "members": "付款会员",
        "beside": "{label}：{now}（前一天 {prev}，上周同日 {week}）",
        "chart": "附图：近 {n} 天净销售额",
        "chart_title": "近 {n} 天净销售额（元）",
        "none": "—",
    },
    "en": {
        "subject": "Daily sales report {day}",
        "title": "Daily sales report: {day}",
        "chain": "All stores",
        "orders": "Orders",
        "sales": "Sales",
        "refunds": "Refunds",
        "net": "Net sales",
        "aov": "Avg order value",
        "members": "Paying members",
        "beside": "{label}: {now} (day before {prev}, same day last week {week})",
        "chart": "Chart: net sales of the last {n} days",
        "chart_title": "Net sales of the last {n} days (yuan)",
        "none": "-",
    },
}


def yuan(fen: int) -> str:
    """Integer fen as yuan, exactly: 123456 -> ¥1,234.56 (integer arithmetic, no float)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


@dataclass
class Section:
    name: str
    day: Figures
    day_before: Figures
    week_before: Figures
    #: net sales in fen of each of the last CHART_DAYS days, oldest first
    net_by_day: list[int]


@dataclass
class Report:
    day: date
    chain: Section
    stores: list[Section]

    @property
    def chart_days(self) -> list[date]:
        return [self.day - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]


async def _section(session: AsyncSession, name: str, store_id: int | None, day: date) -> Section:
    scope = await scopes.with_live(
        session, await scopes.resolve(session, actor=ACTOR, store_id=store_id), sales_only=True
    )
    first = day - timedelta(days=CHART_DAYS - 1)
    table = await DayTable(session, scope, first, day).load()
    week = day - timedelta(days=7)
    net = [
        (await table.figures(d, d)).net_sales_fen
        for d in (day - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1))
    ]
    return Section(
        name=name,
        day=await table.figures(day, day),
        day_before=await table.figures(day - timedelta(days=1), day - timedelta(days=1)),
        week_before=await table.figures(week, week),
        net_by_day=net,
    )


async def compute(session: AsyncSession, day: date, locale: str) -> Report:
    """The figures of local day `day` (each store's own zone) for the chain and each store."""
    t = TEXTS[locale]
    stores = (await session.execute(select(Store.id, Store.name).order_by(Store.id))).all()
    chain = await _section(session, t["chain"], None, day)
    return Report(
        day=day,
        chain=chain,
        stores=[await _section(session, s.name, s.id, day) for s in stores],
    )


def _count(value: int | None, t: dict[str, str]) -> str:
    return t["none"] if value is None else str(value)


def _money(value: int | None, t: dict[str, str]) -> str:
    return t["none"] if value is None else yuan(value)


def render_text(report: Report, locale: str) -> str:
    t = TEXTS[locale]
    lines = [t["title"].format(day=report.day.isoformat()), ""]
    for section in [report.chain, *report.stores]:
        lines.append(f"【{section.name}】" if locale == "zh-CN" else f"[{section.name}]")
        rows: list[tuple[str, list[str]]] = []
        figs = (section.day, section.day_before, section.week_before)
        rows.append((t["orders"], [_count(f.orders, t) for f in figs]))
        rows.append((t["sales"], [yuan(f.sales_fen) for f in figs]))
        rows.append(
            (t["refunds"], [f"{_count(f.refunds, t)} / {yuan(f.refunds_fen)}" for f in figs])
        )
        rows.append((t["net"], [yuan(f.net_sales_fen) for f in figs]))
        rows.append((t["aov"], [_money(f.avg_order_value_fen, t) for f in figs]))
        rows.append((t["members"], [_count(f.paying_members, t) for f in figs]))
        for label, (now, prev, week) in rows:
            lines.append(t["beside"].format(label=label, now=now, prev=prev, week=week))
        lines.append("")
    lines.append(t["chart"].format(n=CHART_DAYS))
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=1)
def _cjk_font() -> str | None:
    """A CJK-capable font family matplotlib can find, or None (labels then stay English)."""
    from matplotlib import font_manager

    for entry in font_manager.fontManager.ttflist:
        if "CJK SC" in entry.name or entry.name in ("WenQuanYi Zen Hei", "SimHei"):
            return str(entry.name)
    return None


def render_chart(report: Report, locale: str) -> bytes:
    """A PNG line chart of the chain's net sales over the last CHART_DAYS days (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    font = _cjk_font()
    chart_locale = locale if font is not None else "en"
    t = TEXTS[chart_locale]
    fig = Figure(figsize=(8, 3.5), dpi=100)
    ax = fig.subplots()
    days = report.chart_days
    # Plotting needs numbers; the exact figures are in the text.
    values = [fen / 100 for fen in report.chain.net_by_day]
    ax.plot([d.strftime("%m-%d") for d in days], values, marker="o")
    title = t["chart_title"].format(n=CHART_DAYS)
    if font is not None and chart_locale == "zh-CN":
        ax.set_title(title, fontfamily=font)
    else:
        ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=45)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


async def send(
    session: AsyncSession, report: Report, recipients: Sequence[str], settings: Settings
) -> None:
    """Hand the report to the notification outbox, one email delivery per recipient with the
    chart inline: sent after the caller commits, and retried like any notification."""
    locale = settings.analytics_daily_report_locale
    await notify.send(
        session,
        kind=KIND,
        title=TEXTS[locale]["subject"].format(day=report.day.isoformat()),
        body=render_text(report, locale),
        channels=(),
        addresses=[("email", recipient) for recipient in recipients],
        images=[
            InlineImage(
                data=render_chart(report, locale),
                filename=f"net-sales-{report.day.isoformat()}.png",
            )
        ],
    )
