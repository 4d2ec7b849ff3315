"""The daily report to managers by email: yesterday's headline figures for the recipient's
stores in total and each of them, with the day before and the same day last week beside them,
and a chart of the last 14 days' net sales as an inline PNG. Figures come from the same
summaries as the dashboard.

Recipients: every active user holding analytics:read with an email address gets the figures
of the stores they see in the console (all of them for an all-stores role), in their own
language; the configured addresses get the chain's, in the configured language."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import scope as scopes
from selfmart.analytics.sales import DayTable, Figures
from selfmart.config import Settings
from selfmart.iam import service as iam
from selfmart.iam.actor import job_actor
from selfmart.iam.permissions import Perm
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
        "mine": "我的门店（{n} 家）",
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
        "mine": "Your {n} stores",
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
    #: the store's name; None for the total of the report's stores
    name: str | None
    day: Figures
    day_before: Figures
    week_before: Figures
    #: net sales in fen of each of the last CHART_DAYS days, oldest first
    net_by_day: list[int]


@dataclass
class Report:
    day: date
    #: the total of `stores`: None when the report is of one store (not the whole chain)
    total: Section | None
    stores: list[Section]
    #: whether the report covers every store (its total is the chain's)
    chain: bool

    @property
    def headline(self) -> Section:
        """The section the chart draws: the total, or the one store."""
        return self.total if self.total is not None else self.stores[0]

    @property
    def chart_days(self) -> list[date]:
        return [self.day - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]


async def _section(
    session: AsyncSession,
    name: str | None,
    day: date,
    *,
    store_id: int | None = None,
    among: frozenset[int] | None = None,
) -> Section:
    """The figures of one store (`store_id`), of the stores `among`, or of the chain."""
    actor = ACTOR if among is None else replace(ACTOR, store_ids=among)
    scope = await scopes.with_live(
        session, await scopes.resolve(session, actor=actor, store_id=store_id), sales_only=True
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


class Reports:
    """The reports of one day for any number of store scopes, each store's figures computed
    once however many recipients' reports show them."""

    def __init__(self, session: AsyncSession, day: date) -> None:
        self.session = session
        self.day = day
        self._names: dict[int, str] | None = None
        self._stores: dict[int, Section] = {}

    async def _store(self, store_id: int, name: str) -> Section:
        if store_id not in self._stores:
            self._stores[store_id] = await _section(self.session, name, self.day, store_id=store_id)
        return self._stores[store_id]

    async def of(self, store_ids: frozenset[int] | None) -> Report | None:
        """The report of local day `day` (each store's own zone) for the stores `store_ids`
        (None: the chain, even of no store yet), or None when none of them exists."""
        if self._names is None:
            rows = (
                await self.session.execute(select(Store.id, Store.name).order_by(Store.id))
            ).all()
            self._names = {int(r.id): r.name for r in rows}
        mine = [i for i in self._names if store_ids is None or i in store_ids]
        if not mine and store_ids is not None:
            return None
        stores = [await self._store(i, self._names[i]) for i in mine]
        total: Section | None = None
        if store_ids is None:
            total = await _section(self.session, None, self.day)
        elif len(mine) > 1:
            total = await _section(self.session, None, self.day, among=frozenset(mine))
        return Report(day=self.day, total=total, stores=stores, chain=store_ids is None)


def _title(report: Report, section: Section, locale: str) -> str:
    t = TEXTS[locale]
    if section.name is not None:
        return section.name
    return t["chain"] if report.chain else t["mine"].format(n=len(report.stores))


def _count(value: int | None, t: dict[str, str]) -> str:
    return t["none"] if value is None else str(value)


def _money(value: int | None, t: dict[str, str]) -> str:
    return t["none"] if value is None else yuan(value)


def render_text(report: Report, locale: str) -> str:
    t = TEXTS[locale]
    lines = [t["title"].format(day=report.day.isoformat()), ""]
    sections = [report.total, *report.stores] if report.total is not None else report.stores
    for section in sections:
        name = _title(report, section, locale)
        lines.append(f"【{name}】" if locale == "zh-CN" else f"[{name}]")
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
    """A PNG line chart of the headline's net sales over the last CHART_DAYS days (Agg)."""
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
    values = [fen / 100 for fen in report.headline.net_by_day]
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


def locale_of(user_locale: str, default: str) -> str:
    """The report's language for a user's locale ("en-US" reads English)."""
    if user_locale in TEXTS:
        return user_locale
    if user_locale.lower().startswith("en"):
        return "en"
    if user_locale.lower().startswith("zh"):
        return "zh-CN"
    return default


async def send(
    session: AsyncSession,
    report: Report,
    locale: str,
    *,
    user_ids: Sequence[int] = (),
    addresses: Sequence[str] = (),
) -> int:
    """Hand the report to the notification outbox, one email delivery per recipient (the
    users' own addresses, and `addresses`) with the chart inline: sent after the caller
    commits, and retried like any notification. Returns how many deliveries were queued."""
    out = await notify.send(
        session,
        kind=KIND,
        title=TEXTS[locale]["subject"].format(day=report.day.isoformat()),
        body=render_text(report, locale),
        user_ids=user_ids,
        channels=("email",) if user_ids else (),
        addresses=[("email", address) for address in addresses],
        images=[
            InlineImage(
                data=render_chart(report, locale),
                filename=f"net-sales-{report.day.isoformat()}.png",
            )
        ],
    )
    return len(out.deliveries)


async def send_all(session: AsyncSession, day: date, settings: Settings) -> int:
    """Queue the report of `day` to every recipient (see the module's docstring): the
    configured addresses the chain's, each user with analytics:read and an email address
    their own stores' (grouped, so recipients with the same stores and language share one
    rendering). An address both configured and a user's gets the chain's report, once.
    Returns how many messages were queued."""
    addresses = list(dict.fromkeys(a.strip() for a in settings.analytics_daily_report_to))
    addresses = [a for a in addresses if a]
    default = settings.analytics_daily_report_locale
    #: (stores, language) -> (users, addresses) who get that one rendering
    groups: dict[tuple[frozenset[int] | None, str], tuple[list[int], list[str]]] = {}
    if addresses:
        groups[(None, default)] = ([], addresses)
    if settings.analytics_daily_report_users:
        configured = {a.lower() for a in addresses}
        for holder in await iam.active_holders(session, Perm.ANALYTICS_READ):
            if holder.email is None or holder.email.lower() in configured:
                continue
            key = (holder.store_ids, locale_of(holder.locale, default))
            groups.setdefault(key, ([], []))[0].append(holder.user_id)
    reports = Reports(session, day)
    queued = 0
    for (store_ids, locale), (user_ids, extra) in groups.items():
        report = await reports.of(store_ids)
        if report is not None:
            queued += await send(session, report, locale, user_ids=user_ids, addresses=extra)
    return queued
