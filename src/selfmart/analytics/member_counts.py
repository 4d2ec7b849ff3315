"""Distinct paying members per period: a store's (or the whole chain's) day, ISO week, month and
year, counted once from `analytics_member_days` when the refresh or the rebuild rewrites a day
of the period, so that a dashboard never counts a year of member days to show one number.

Distinct counts do not add up across days or stores, which is why they are stored per period
and per scope (each store, and 0 for the chain). Windows that are not one whole period, scopes
of several stores that are not the chain (a city, a manager's stores), and periods with days in
the live tail are counted from the member days as before (see `sales.DayTable.members`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics.summaries import Key
from selfmart.kit.time import utcnow
from selfmart.models import MemberCount, MemberDay, RefreshState

#: the store_id that stands for every store of the chain
CHAIN = 0
KINDS = ("day", "week", "month", "year")
#: the RefreshState row saying the counts were built (by a rebuild) and are kept since
STATE = "member_counts"

Period = tuple[str, date]
CountKey = tuple[int, str, date]


def period(day: date, kind: str) -> tuple[date, date]:
    """The first and last day of the `kind` period holding `day`."""
    if kind == "day":
        return day, day
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if kind == "month":
        start = day.replace(day=1)
        nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        return start, nxt - timedelta(days=1)
    return date(day.year, 1, 1), date(day.year, 12, 31)


def whole_period(first: date, last: date) -> Period | None:
    """The period first..last is exactly, if it is one (the smallest kind first)."""
    for kind in KINDS:
        if period(first, kind) == (first, last):
            return kind, first
    return None


def periods_of(keys: Iterable[Key]) -> set[Period]:
    return {(kind, period(day, kind)[0]) for _, day in keys for kind in KINDS}


async def built(session: AsyncSession) -> bool:
    found = await session.scalar(select(RefreshState.name).where(RefreshState.name == STATE))
    return found is not None


async def expected(session: AsyncSession, periods: Iterable[Period]) -> dict[CountKey, int]:
    """What the counts of these periods are, for every store and the chain, from the member
    days (a period without a paying member has no row: zero)."""
    out: dict[CountKey, int] = {}
    m = MemberDay
    for kind, start in sorted(set(periods)):
        first, last = period(start, kind)
        in_period = (m.day >= first, m.day <= last)
        for r in (
            await session.execute(
                select(m.store_id, func.count(func.distinct(m.member_id)).label("n"))
                .where(*in_period)
                .group_by(m.store_id)
            )
        ).all():
            out[(r.store_id, kind, start)] = int(r.n)
        chain = int(
            await session.scalar(select(func.count(func.distinct(m.member_id))).where(*in_period))
            or 0
        )
        if chain:
            out[(CHAIN, kind, start)] = chain
    return out


async def stored(session: AsyncSession, periods: Iterable[Period]) -> dict[CountKey, int]:
    out: dict[CountKey, int] = {}
    by_kind: dict[str, list[date]] = defaultdict(list)
    for kind, start in periods:
        by_kind[kind].append(start)
    c = MemberCount
    for kind, starts in by_kind.items():
        for i in range(0, len(starts), 500):
            for r in (
                await session.execute(
                    select(c.store_id, c.start, c.members).where(
                        c.kind == kind, c.start.in_(sorted(starts[i : i + 500]))
                    )
                )
            ).all():
                out[(r.store_id, kind, r.start)] = r.members
    return out


async def recount(session: AsyncSession, keys: Iterable[Key]) -> None:
    """Count again every period holding one of these store days (the refresh's and the
    rebuild's last step, after the member days are written)."""
    periods = periods_of(keys)
    if not periods or not await built(session):
        return
    await _write(session, periods)


async def rebuild(session: AsyncSession, keys: Iterable[Key]) -> None:
    """Throw every count away and count each period of these store days (every summarised
    day), then keep them from now on."""
    await session.execute(delete(MemberCount).execution_options(synchronize_session=False))
    state = await session.get(RefreshState, STATE)
    if state is None:
        session.add(RefreshState(name=STATE, last_event_id=0, days_refreshed=0))
    else:
        state.refreshed_at = utcnow()
    await session.flush()
    await _write(session, periods_of(keys))


async def _write(session: AsyncSession, periods: set[Period]) -> None:
    c = MemberCount
    for kind, start in sorted(periods):
        await session.execute(
            delete(c)
            .where(c.kind == kind, c.start == start)
            .execution_options(synchronize_session=False)
        )
    rows = [
        {"store_id": s, "kind": k, "start": d, "members": n}
        for (s, k, d), n in (await expected(session, periods)).items()
    ]
    for i in range(0, len(rows), 500):
        await session.execute(insert(c), rows[i : i + 500])
