"""Members versus guests: member and guest (non-member) sales and orders, new members and the
repurchase rate per period, with the previous period beside each (docs/analytics.md).

Sales and orders come from the daily sales summaries (`member_orders`, `member_sales_fen`),
buying and repeat members from the member days (`analytics_member_days`), both with the live
tail in place of the stored rows it replaces; no raw order line is read. New members are
members registered in the period (merged-away duplicates excluded), on the local day of their
home store's zone (Asia/Shanghai without one).

Repurchase rate of a period = members who paid in the period and had paid before it (in the
same scope) / members who paid in the period; null when nobody paid.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from selfmart.analytics import member_counts
from selfmart.analytics.sales import DayTable, Granularity, Period, periods, previous, shift_window
from selfmart.analytics.scope import Scope
from selfmart.analytics.summaries import CHUNK, Key, excluding
from selfmart.members import service as members
from selfmart.models import MemberDay

DEFAULT_ZONE = "Asia/Shanghai"


def _literal(ids: list[int]) -> Any:
    """Members' ids as literals in the statement: as bound parameters, once PostgreSQL uses a
    generic plan, every member day read is compared with each id in turn; as constants the
    list is hashed (the fix c3ca8c5 made in the dashboard's live tail)."""
    return bindparam("ids", ids, expanding=True, literal_execute=True)


class _Buyers:
    """Buying and repeat members of a scope over any sub-range of days."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope
        mine = set(scope.store_ids)
        #: every live store day of the scope (their stored rows are stale)
        self.live_keys: list[Key] = sorted(k for k in scope.live.keys if k[0] in mine)
        #: member -> the live days they paid on
        self.live_days: dict[int, set[date]] = {}
        for store_id, day, member_id in scope.live.members:
            if store_id in mine:
                self.live_days.setdefault(member_id, set()).add(day)

    def _where(self, model: Any) -> list[Any]:
        return [model.store_id.in_(self.scope.store_ids), excluding(model, self.live_keys)]

    async def count(self, first: date, last: date) -> tuple[int, int]:
        """(members who paid in first..last, those of them who had paid before first)."""
        if not self.scope.store_ids:
            return 0, 0
        m = MemberDay
        earlier = aliased(MemberDay)
        live_ids = sorted(self.live_days)
        in_window = [*self._where(m), m.day >= first, m.day <= last]
        # Members without a live day: entirely from the stored rows.
        stored_only = in_window
        if live_ids:
            stored_only = [*in_window, m.member_id.not_in(_literal(live_ids))]
        before = exists().where(
            earlier.member_id == m.member_id, earlier.day < first, *self._where(earlier)
        )
        buyers = int(
            await self.session.scalar(
                select(func.count(func.distinct(m.member_id))).where(*stored_only)
            )
            or 0
        )
        repeat = int(
            await self.session.scalar(
                select(func.count(func.distinct(m.member_id))).where(*stored_only, before)
            )
            or 0
        )
        # Members with a live day: their stored days and live days together.
        for i in range(0, len(live_ids), CHUNK):
            chunk = live_ids[i : i + CHUNK]
            rows = await self.session.execute(
                select(m.member_id, m.day)
                .where(*self._where(m), m.day <= last, m.member_id.in_(_literal(chunk)))
                .distinct()
            )
            days: dict[int, set[date]] = {mid: set(self.live_days[mid]) for mid in chunk}
            for r in rows.all():
                days[r.member_id].add(r.day)
            for paid in days.values():
                if any(first <= d <= last for d in paid):
                    buyers += 1
                    repeat += any(d < first for d in paid)
        return buyers, repeat


async def _new_members(
    session: AsyncSession, scope: Scope, ps: Iterable[Period]
) -> dict[date, int]:
    """Members registered on each local day of the given periods."""
    wanted = list(ps)
    if not wanted or not scope.store_ids:
        return {}
    first = min(p.start for p in wanted)
    last = max(p.end for p in wanted)
    # Wide enough for any zone; each registration is then placed on its own local day.
    lo = datetime.combine(first - timedelta(days=1), time(), UTC)
    hi = datetime.combine(last + timedelta(days=2), time(), UTC)
    homes = None if scope.count_key == member_counts.CHAIN else scope.store_ids
    out: dict[date, int] = {}
    for at, home in await members.registrations(session, since=lo, until=hi, home_store_ids=homes):
        zone = scope.zones.get(home) if home else None
        day = at.astimezone(ZoneInfo(zone or DEFAULT_ZONE)).date()
        if first <= day <= last:
            out[day] = out.get(day, 0) + 1
    return out


def _rate(repeat: int, buyers: int) -> Decimal | None:
    if not buyers:
        return None
    return (Decimal(repeat) / buyers).quantize(Decimal("0.0001"), ROUND_HALF_UP)


async def _figures(
    table: DayTable, buyers: _Buyers, new: dict[date, int], first: date, last: date
) -> dict[str, Any]:
    orders = sales = member_orders = member_sales = new_members = 0
    d = first
    while d <= last:
        row = table.days.get(d)
        if row is not None:
            orders += row["orders"]
            sales += row["sales_fen"]
            member_orders += row["member_orders"]
            member_sales += row["member_sales_fen"]
        new_members += new.get(d, 0)
        d += timedelta(days=1)
    paying, repeat = await buyers.count(first, last)
    return {
        "orders": orders,
        "sales_fen": sales,
        "member_orders": member_orders,
        "member_sales_fen": member_sales,
        "guest_orders": orders - member_orders,
        "guest_sales_fen": sales - member_sales,
        "new_members": new_members,
        "paying_members": paying,
        "repeat_members": repeat,
        "repurchase_rate": _rate(repeat, paying),
    }


async def series(
    session: AsyncSession, scope: Scope, *, first: date, last: date, granularity: Granularity
) -> dict[str, Any]:
    """Each period of the window beside the period before it, and the window's totals beside
    the window just before it."""
    ps = periods(first, last, granularity)
    prev_window = shift_window(ps, granularity, "previous")
    table = await DayTable(session, scope, prev_window.start, ps[-1].end).load()
    all_periods = [*ps, prev_window, *(previous(p, granularity) for p in ps)]
    new = await _new_members(session, scope, all_periods)
    buyers = _Buyers(session, scope)
    rows = []
    for p in ps:
        pp = previous(p, granularity)
        rows.append(
            {
                "period": p.label,
                "start": p.start,
                "end": p.end,
                "current": await _figures(table, buyers, new, p.start, p.end),
                "previous": await _figures(table, buyers, new, pp.start, pp.end),
            }
        )
    return {
        "granularity": granularity,
        "store_ids": scope.store_ids,
        "start": ps[0].start,
        "end": ps[-1].end,
        "periods": rows,
        "total": {
            "start": ps[0].start,
            "end": ps[-1].end,
            "current": await _figures(table, buyers, new, ps[0].start, ps[-1].end),
            "previous": await _figures(table, buyers, new, prev_window.start, prev_window.end),
        },
    }
