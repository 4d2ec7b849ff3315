"""A store's sales by calendar month (`analytics_sales_months`): the sum of its day rows, kept
by the same refresh and rebuild that write the days, so that a dashboard reads a chain's year
as one row per store and month rather than one per store and day.

A month row is a pure function of the store's day rows of that month (and so of the raw orders,
which `selfmart check-analytics` compares it with). Readers use it only for a whole month none
of whose days is in the live tail (see `sales.DayTable`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics.summaries import SALES_FIELDS, Key, Row
from selfmart.models import SalesDay, SalesMonth

MonthKey = tuple[int, date]


def month_of(day: date) -> date:
    return day.replace(day=1)


def month_end(month: date) -> date:
    nxt = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def months_of(keys: Iterable[Key]) -> set[MonthKey]:
    return {(store_id, month_of(day)) for store_id, day in keys}


async def recount(session: AsyncSession, keys: Iterable[Key]) -> None:
    """Sum again every store month holding one of these store days (after the days are
    written): delete its row and insert the sum of its day rows (none if it has none)."""
    by_month: dict[date, set[int]] = defaultdict(set)
    for store_id, month in months_of(keys):
        by_month[month].add(store_id)
    d = SalesDay
    for month, store_ids in sorted(by_month.items()):
        stores = sorted(store_ids)
        await session.execute(
            delete(SalesMonth)
            .where(SalesMonth.month == month, SalesMonth.store_id.in_(stores))
            .execution_options(synchronize_session=False)
        )
        rows = (
            await session.execute(
                select(d.store_id, *(func.sum(getattr(d, f)).label(f) for f in SALES_FIELDS))
                .where(d.store_id.in_(stores), d.day >= month, d.day <= month_end(month))
                .group_by(d.store_id)
            )
        ).all()
        values = [
            {
                "store_id": r.store_id,
                "month": month,
                **{f: int(getattr(r, f)) for f in SALES_FIELDS},
            }
            for r in rows
        ]
        if values:
            await session.execute(insert(SalesMonth), values)


def expected(days: dict[Key, Row]) -> dict[MonthKey, Row]:
    """The month rows these day rows sum to."""
    out: dict[MonthKey, Row] = {}
    for (store_id, day), row in days.items():
        total = out.setdefault((store_id, month_of(day)), dict.fromkeys(SALES_FIELDS, 0))
        for f in SALES_FIELDS:
            total[f] += row[f]
    return out


async def stored(session: AsyncSession) -> dict[MonthKey, Row]:
    return {
        (m.store_id, m.month): {f: getattr(m, f) for f in SALES_FIELDS}
        for m in (await session.scalars(select(SalesMonth))).all()
    }
