"""Members versus guests: member and guest (non-member) sales and orders, new members and the
repurchase rate per period, with the previous period beside each (docs/analytics.md).

Sales, orders and paying members are read as `GET /sales` reads them (`sales.DayTable`: one
statement for every window, whole months and stored distinct-member counts where they fit, the
live tail as a correction); repeat members are paying members less those paying for the first
time, counted from each member's first day in the scope's member days (`first_days`, one
statement). No raw order line is read. New members are
members registered in the period (merged-away duplicates excluded), on the local day of their
home store's zone (Asia/Shanghai without one).

Repurchase rate of a period = members who paid in the period and had paid before it (in the
same scope) / members who paid in the period; null when nobody paid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import member_counts
from selfmart.analytics.sales import DayTable, Granularity, Period, periods, previous, shift_window
from selfmart.analytics.scope import Scope
from selfmart.analytics.summaries import key_condition
from selfmart.members import service as members
from selfmart.models import MemberDay

DEFAULT_ZONE = "Asia/Shanghai"


def _literal(ids: list[int]) -> Any:
    """Members' ids as literals in the statement: as bound parameters, once PostgreSQL uses a
    generic plan, every member day read is compared with each id in turn; as constants the
    list is hashed (the fix c3ca8c5 made in the dashboard's live tail)."""
    return bindparam("ids", ids, expanding=True, literal_execute=True)


async def first_days(session: AsyncSession, scope: Scope, last: date) -> dict[date, int]:
    """How many members paid for the first time in the scope's stores on each day up to
    `last`, the live tail in place of the stored rows it replaces. A window's repeat members
    are then its paying members less those whose first day falls in it (each of them paid in
    it; every other paying member paid before it), so every window is a sum over this.

    One statement: the members untouched by the live tail (no live day now, no stored row on
    a live day) are grouped by their first stored day in the database; the few it touches bring
    their stored days (found by member), and their first day is taken here, the stored rows of
    live days left out and their live days added. Leaving the live days' rows out in the
    database instead compared every member day with each live day (4 us a row)."""
    if not scope.store_ids:
        return {}
    mine = set(scope.store_ids)
    live_keys = {k for k in scope.live.keys if k[0] in mine}
    first: dict[int, date] = {}
    for store_id, day, member_id in scope.live.members:
        if store_id in mine and day <= last:
            first[member_id] = min(day, first.get(member_id, day))
    m = MemberDay
    in_scope = [m.store_id.in_(scope.store_ids), m.day <= last]
    untouched = [*in_scope]
    touched: list[Any] = []
    if first:
        untouched.append(m.member_id.not_in(_literal(sorted(first))))
        touched.append(m.member_id.in_(_literal(sorted(first))))
    if live_keys:
        stored_live = select(m.member_id).where(key_condition(m, live_keys))
        untouched.append(m.member_id.not_in(stored_live))
        touched.append(m.member_id.in_(stored_live))
    firsts = (
        select(func.min(m.day).label("first")).where(*untouched).group_by(m.member_id).subquery()
    )
    parts: list[Any] = [
        select(
            literal("first").label("tag"),
            literal(0).label("member_id"),
            firsts.c.first.label("day"),
            func.count().label("n"),
        ).group_by(firsts.c.first)
    ]
    # One part per kind of touched member (an OR of the two would scan every member day).
    parts += [
        select(literal("day"), m.member_id, m.day, m.store_id).where(*in_scope, condition)
        for condition in touched
    ]
    out: dict[date, int] = defaultdict(int)
    for r in (await session.execute(union_all(*parts))).all():
        if r.tag == "first":
            out[r.day] += int(r.n)
        elif (r.n, r.day) not in live_keys:  # a live day's stored row is replaced
            first[r.member_id] = min(r.day, first.get(r.member_id, r.day))
    for day in first.values():
        out[day] += 1
    return out


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
    table: DayTable, firsts: dict[date, int], new: dict[date, int], first: date, last: date
) -> dict[str, Any]:
    total = table.totals(first, last)
    orders, sales, member_orders, member_sales = (
        total[c] for c in ("orders", "sales_fen", "member_orders", "member_sales_fen")
    )
    new_members = first_timers = 0
    d = first
    while d <= last:
        new_members += new.get(d, 0)
        first_timers += firsts.get(d, 0)
        d += timedelta(days=1)
    paying = await table.members(first, last) or 0
    repeat = paying - first_timers
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
    all_periods = [*ps, prev_window, *(previous(p, granularity) for p in ps)]
    windows = [(p.start, p.end) for p in all_periods] + [(ps[0].start, ps[-1].end)]
    # Every window's figures and paying members in one statement (stored whole months and
    # distinct-member counts where they fit), the first days of paying members in another.
    table = await DayTable(session, scope, prev_window.start, ps[-1].end, windows).load()
    firsts = await first_days(session, scope, ps[-1].end)
    new = await _new_members(session, scope, all_periods)
    rows = []
    for p in ps:
        pp = previous(p, granularity)
        rows.append(
            {
                "period": p.label,
                "start": p.start,
                "end": p.end,
                "current": await _figures(table, firsts, new, p.start, p.end),
                "previous": await _figures(table, firsts, new, pp.start, pp.end),
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
            "current": await _figures(table, firsts, new, ps[0].start, ps[-1].end),
            "previous": await _figures(table, firsts, new, prev_window.start, prev_window.end),
        },
    }
