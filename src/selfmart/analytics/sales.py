"""Sales figures by day, ISO week and month in the stores' own zones, with the previous period
and the same period last year beside each; read from the summaries plus the live tail."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
    and_,
    cast,
    column,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import member_counts, months, scoped_figures
from selfmart.analytics.scope import Scope
from selfmart.analytics.summaries import Key, key_condition, rows_table
from selfmart.errors import ValidationFailed
from selfmart.models import MemberCount, MemberDay, RefreshState, SalesDay, SalesMonth

Granularity = Literal["day", "week", "month"]

#: The longest window a request may ask for, in periods.
MAX_PERIODS: dict[str, int] = {"day": 370, "week": 106, "month": 60}

ADDITIVE = (
    "orders",
    "sales_fen",
    "items",
    "refunds",
    "refunds_fen",
    "member_orders",
    "member_sales_fen",
)


#: Built `DayTable` statements by everything they depend on, the most recently used last.
_STATEMENTS: dict[tuple[Any, ...], Any] = {}
MAX_STATEMENTS = 64


@dataclass(frozen=True)
class Period:
    label: str
    start: date
    end: date


# --- periods ---------------------------------------------------------------------------------


def period_of(day: date, granularity: Granularity) -> Period:
    if granularity == "day":
        return Period(day.isoformat(), day, day)
    if granularity == "week":
        start = day - timedelta(days=day.weekday())
        year, week, _ = day.isocalendar()
        return Period(f"{year}-W{week:02d}", start, start + timedelta(days=6))
    start = day.replace(day=1)
    nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return Period(f"{start:%Y-%m}", start, nxt - timedelta(days=1))


def previous(p: Period, granularity: Granularity) -> Period:
    return period_of(p.start - timedelta(days=1), granularity)


def last_year(p: Period, granularity: Granularity) -> Period:
    if granularity == "week":
        year, week, _ = p.start.isocalendar()
        try:
            monday = date.fromisocalendar(year - 1, week, 1)
        except ValueError:  # week 53 of a year whose previous year had 52
            monday = date.fromisocalendar(year - 1, 52, 1)
        return period_of(monday, "week")
    d = p.start
    try:
        same = d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        same = d.replace(year=d.year - 1, day=28)
    return period_of(same, granularity)


def periods(first: date, last: date, granularity: Granularity) -> list[Period]:
    """The periods covering first..last, whole (a week from Monday, a month from the 1st)."""
    if last < first:
        raise ValidationFailed("The window ends before it starts", field="end")
    out: list[Period] = []
    p = period_of(first, granularity)
    while p.start <= last:
        out.append(p)
        if len(out) > MAX_PERIODS[granularity]:
            raise ValidationFailed(
                f"The window is longer than {MAX_PERIODS[granularity]} {granularity}s",
                field="end",
            )
        p = period_of(p.end + timedelta(days=1), granularity)
    return out


def shift_window(ps: list[Period], granularity: Granularity, how: str) -> Period:
    """The whole window moved back by its own length ("previous") or by a year."""
    if how == "previous":
        first = ps[0]
        for _ in ps:
            first = previous(first, granularity)
        last = previous(ps[-1], granularity)
        for _ in ps[1:]:
            last = previous(last, granularity)
        return Period("", first.start, last.end)
    a, b = last_year(ps[0], granularity), last_year(ps[-1], granularity)
    return Period("", a.start, b.end)


def _runs(days: set[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs."""
    out: list[tuple[date, date]] = []
    for d in sorted(days):
        if out and out[-1][1] + timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


# --- figures -------------------------------------------------------------------------------


@dataclass
class Figures:
    orders: int
    sales_fen: int
    refunds: int
    refunds_fen: int
    items: int
    paying_members: int
    #: None for a product or a category
    member_sales_fen: int | None

    @property
    def net_sales_fen(self) -> int:
        return self.sales_fen - self.refunds_fen

    @property
    def avg_order_value_fen(self) -> int:
        if not self.orders:
            return 0
        return int((Decimal(self.sales_fen) / self.orders).quantize(Decimal(1), ROUND_HALF_UP))

    @property
    def items_per_order(self) -> Decimal:
        if not self.orders:
            return Decimal("0.00")
        return (Decimal(self.items) / self.orders).quantize(Decimal("0.01"), ROUND_HALF_UP)

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "sales_fen": self.sales_fen,
            "refunds": self.refunds,
            "refunds_fen": self.refunds_fen,
            "net_sales_fen": self.net_sales_fen,
            "avg_order_value_fen": self.avg_order_value_fen,
            "items": self.items,
            "items_per_order": self.items_per_order,
            "paying_members": self.paying_members,
            "member_sales_fen": self.member_sales_fen,
        }


class DayTable:
    """Additive figures per local day for a scope over a range, and distinct paying members
    over any sub-range, with the live tail in place of the stored rows it replaces.

    Given the windows the caller will ask `figures` for, a whole month inside one of them is
    read as one row per store from `analytics_sales_months` instead of its days, unless some
    of its days are wanted anyway.

    The live tail (store days changed since the last refresh) is taken in as a correction of
    the stored rows, never by leaving them out: each live store day adds its recomputed figures
    less the stored ones, wherever that day is read (a day row or its month's row), and the
    distinct members of a window are the stored count (a stored period count or the member
    days) corrected for the members that differ between the live and the stored rows of its
    live days, looked up in the window's other stored member days. So a live day costs a few
    indexed rows, whichever windows it falls in."""

    def __init__(
        self,
        session: AsyncSession,
        scope: Scope,
        first: date,
        last: date,
        windows: Sequence[tuple[date, date]] = (),
    ) -> None:
        self.session = session
        self.scope = scope
        self.first = first
        self.last = last
        self.days: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ADDITIVE, 0))
        self.live_keys = scope.live_keys(first, last)
        #: distinct paying members of each day, from the stored rows
        self.day_members: dict[date, int] = {}
        #: the scope's stored distinct-member counts of whole periods (member_counts)
        self.counts: dict[member_counts.Period, int] | None = None
        #: the kinds of whole period whose stored member counts the windows ask for
        self.kinds = {
            w[0] for w in (member_counts.whole_period(a, b) for a, b in windows) if w
        } or set(member_counts.KINDS)
        #: first days of the months read as month rows, and their figures
        self.whole_months: set[date] = set()
        self.months: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ADDITIVE, 0))
        #: the days read as day rows, as (first, last) runs
        self.day_runs: list[tuple[date, date]] = [(first, last)]
        #: windows whose distinct members are counted from the member days with the rest
        #: (no whole period), and those counts
        self.member_windows: list[tuple[date, date]] = []
        self.distinct: dict[tuple[date, date], int] = {}
        #: (store, day, member) of the stored member days of the members paying on a live
        #: day, now or as stored (see `_live_correction`)
        self.member_days: list[tuple[int, date, int]] = []
        #: the same, indexed once for `_live_correction`: the members stored on each live
        #: day, the members paying on each live day now, and each member's other days (sorted)
        self._stored_on: dict[Key, set[int]] = defaultdict(set)
        self._live_on: dict[Key, set[int]] = defaultdict(set)
        self._other_days: dict[int, list[date]] = defaultdict(list)
        #: the members whose presence on some live store day differs between its stored and
        #: its live rows: the only ones whose member days are read (see `_load_sales`)
        self.changed: set[int] = set()
        #: a product's or a category's figures (the scope is no plain set of stores)
        self.windows = list(windows)
        self.scoped: scoped_figures.ScopedTable | None = None
        if windows and scope.kind == "sales":
            self._plan(windows)

    def _plan(self, windows: Sequence[tuple[date, date]]) -> None:
        candidates: set[date] = set()
        for a, b in windows:
            m = a if a.day == 1 else months.month_end(a) + timedelta(days=1)
            while months.month_end(m) <= b:
                candidates.add(m)
                m = months.month_end(m) + timedelta(days=1)
        # A month some of whose days are read anyway is summed from its days; the days of a
        # month given up so are wanted in turn (by a window that held it whole), so until no
        # month is given up.
        while True:
            wanted: set[date] = set()
            for a, b in windows:
                d = a
                while d <= b:
                    if d.day == 1 and d in candidates and months.month_end(d) <= b:
                        d = months.month_end(d) + timedelta(days=1)
                        continue
                    wanted.add(d)
                    d += timedelta(days=1)
            split = candidates & {months.month_of(d) for d in wanted}
            if not split:
                break
            candidates -= split
        self.whole_months = candidates
        self.day_runs = _runs(wanted)
        self.member_windows = sorted(
            {(a, b) for a, b in windows if member_counts.whole_period(a, b) is None}
        )

    async def load(self) -> DayTable:
        scope = self.scope
        if not scope.store_ids:
            return self
        if scope.kind == "sales":
            await self._load_sales()
            md = MemberDay
            per_day = (
                select(md.day, func.count(func.distinct(md.member_id)).label("n"))
                .where(*self._stored(md))
                .group_by(md.day)
            )
            if self.counts is None:
                for n in (await self.session.execute(per_day)).all():
                    self.day_members[n.day] = int(n.n)
            # The live store days in place of their stored rows: add the difference to
            # whichever row the day is read from.
            for key in self.live_keys:
                live = scope.live.sales.get(key)
                row = self._row_of(key[1])
                for c in ADDITIVE:
                    row[c] += live[c] if live else 0
        else:
            self.scoped = await scoped_figures.ScopedTable(
                self.session, scope, self.first, self.last, self.windows
            ).load(self.days)
        return self

    def _row_of(self, day: date) -> dict[str, int]:
        month = months.month_of(day)
        return self.months[month] if month in self.whole_months else self.days[day]

    async def _load_sales(self) -> None:
        """One statement (UNION ALL, each part tagged): the day rows wanted, the whole months,
        the stored member counts (with the flag saying they were built: a row of nulls when
        there are none), the distinct members of each window that is no whole period and, for
        the live tail, its store days' stored rows (to take away) and the stored member days
        of every member paying on them, live or stored (to correct the distinct counts)."""
        postgres = self.session.get_bind().dialect.name == "postgresql"
        keys = set(self.live_keys)
        live_members = sorted(k for k in self.scope.live.members if (k[0], k[1]) in keys)
        # The statement depends on nothing else: a dashboard asked again (the console
        # refreshing it) reuses the one it built, instead of building it anew (~300 clause
        # coercions for a month by day).
        shape = (
            postgres,
            tuple(self.scope.store_ids),
            tuple(self.day_runs),
            tuple(sorted(self.whole_months)),
            self.scope.count_key,
            tuple(sorted(self.kinds)),
            self.first,
            self.last,
            tuple(self.member_windows),
            tuple(sorted(keys)),
            tuple(live_members),
        )
        stmt = _STATEMENTS.get(shape)
        if stmt is None:
            stmt = self._statement(postgres, live_members)
            if len(_STATEMENTS) >= MAX_STATEMENTS:
                _STATEMENTS.pop(next(iter(_STATEMENTS)))
        else:
            del _STATEMENTS[shape]  # moved to the end: the least recently used goes first
        _STATEMENTS[shape] = stmt
        rows = (await self.session.execute(stmt)).all() if stmt is not None else []
        self._take(rows)

    def _statement(self, postgres: bool, live_members: list[tuple[int, date, int]]) -> Any:
        """The UNION ALL statement of `_load_sales` (None when it has no part)."""
        scope = self.scope
        stores = scope.store_ids
        parts: list[Any] = []

        def part(tag: str, d: Any, d2: Any, kind: Any, values: list[Any]) -> Any:
            return select(
                literal(tag, String).label("tag"),
                d.label("d"),
                d2.label("d2"),
                kind.label("kind"),
                *(cast(v, BigInteger).label(f"v{i}") for i, v in enumerate(values)),
            )

        no_date = null().cast(Date)
        no_kind = null().cast(String)
        if self.day_runs:
            m = SalesDay
            parts.append(
                part("day", m.day, no_date, no_kind, [func.sum(getattr(m, c)) for c in ADDITIVE])
                .where(
                    m.store_id.in_(stores),
                    or_(*(and_(m.day >= a, m.day <= b) for a, b in self.day_runs)),
                )
                .group_by(m.day)
            )
        if self.whole_months:
            sm = SalesMonth
            parts.append(
                part(
                    "month",
                    sm.month,
                    no_date,
                    no_kind,
                    [func.sum(getattr(sm, c)) for c in ADDITIVE],
                )
                .where(sm.store_id.in_(stores), sm.month.in_(sorted(self.whole_months)))
                .group_by(sm.month)
            )
        zeros = [literal(0)] * (len(ADDITIVE) - 1)
        if scope.count_key is not None:
            c = MemberCount
            parts.append(
                part("count", c.start, no_date, c.kind, [c.members, *zeros])
                .select_from(RefreshState)
                .outerjoin(
                    c,
                    and_(
                        c.store_id == scope.count_key,
                        c.kind.in_(sorted(self.kinds)),
                        c.start >= self.first,
                        c.start <= self.last,
                    ),
                )
                .where(RefreshState.name == member_counts.STATE)
            )
        md = MemberDay
        for a, b in self.member_windows:
            parts.append(
                part("members", literal(a, Date), literal(b, Date), no_kind,
                     [func.count(func.distinct(md.member_id)), *zeros])
                .where(md.store_id.in_(stores), md.day >= a, md.day <= b)
            )  # fmt: skip
        if self.live_keys:
            m = SalesDay
            parts.append(
                part("stored", m.day, no_date, no_kind, [func.sum(getattr(m, c)) for c in ADDITIVE])
                .where(key_condition(m, self.live_keys))
                .group_by(m.day)
            )
            # The members whose presence on some live day differs between its stored rows
            # and the live ones (D): per live store day, the live members not stored there and
            # the stored ones no longer live, found by the database (the live triples go in as
            # a table: arrays on PostgreSQL). Only they can change a window's distinct count
            # (see `_live_correction`), so only their member days in the range are read: a few
            # index probes by member, not every day of every member paying on a live day.
            lm = rows_table(
                postgres,
                "live_members",
                (column("store_id", Integer), column("day", Date), column("member_id", Integer)),
                live_members,
            )
            same = (md.store_id == lm.c.store_id, md.day == lm.c.day)
            diff = union_all(
                select(lm.c.member_id).where(
                    ~select(md.member_id).where(*same, md.member_id == lm.c.member_id).exists()
                ),
                select(md.member_id).where(
                    key_condition(md, self.live_keys),
                    ~select(lm.c.member_id).where(*same, lm.c.member_id == md.member_id).exists(),
                ),
            ).cte("diff")
            parts.append(part("diff", no_date, no_date, no_kind, [diff.c.member_id, *zeros]))
            # Their stored member days in the range (the store carried in v1).
            in_range = (md.store_id.in_(stores), md.day >= self.first, md.day <= self.last)
            if postgres:
                # Member by member (a LATERAL kept whole by OFFSET 0): the planner cannot know
                # that D is a handful of members and hashed them against a year of member days.
                d = select(diff.c.member_id).distinct().subquery("d")
                theirs = (
                    select(md.day, md.member_id, md.store_id)
                    .where(md.member_id == d.c.member_id, *in_range)
                    .offset(0)
                    .lateral("theirs")
                )
                parts.append(
                    part("member", theirs.c.day, no_date, no_kind,
                         [theirs.c.member_id, theirs.c.store_id, *zeros[1:]])
                    .select_from(d)
                    .join(theirs, true())
                )  # fmt: skip
            else:
                parts.append(
                    part("member", md.day, no_date, no_kind,
                         [md.member_id, md.store_id, *zeros[1:]])
                    .where(*in_range, md.member_id.in_(select(diff.c.member_id)))
                )  # fmt: skip
        return union_all(*parts) if parts else None

    def _take(self, rows: Sequence[Any]) -> None:
        for r in rows:
            values = [int(getattr(r, f"v{i}") or 0) for i in range(len(ADDITIVE))]
            if r.tag in ("day", "month"):
                row = (self.days if r.tag == "day" else self.months)[r.d]
                for c_, v in zip(ADDITIVE, values, strict=True):
                    row[c_] += v
            elif r.tag == "count":
                if self.counts is None:
                    self.counts = {}
                if r.kind is not None:
                    self.counts[(r.kind, r.d)] = values[0]
            elif r.tag == "stored":
                row = self._row_of(r.d)
                for c_, v in zip(ADDITIVE, values, strict=True):
                    row[c_] -= v
            elif r.tag == "member":
                self.member_days.append((values[1], r.d, values[0]))
            elif r.tag == "diff":
                self.changed.add(values[0])
            else:
                self.distinct[(r.d, r.d2)] = values[0]

    def _stored(self, model: Any) -> list[Any]:
        """The scope's stored rows of the range, live days included (sales: corrected)."""
        return [
            model.store_id.in_(self.scope.store_ids),
            model.day >= self.first,
            model.day <= self.last,
        ]

    async def members(self, first: date, last: date) -> int:
        """Distinct paying members over first..last (of a product or a category: members
        with an order of it)."""
        if not self.scope.store_ids:
            return 0
        if self.scoped is not None:
            return await self.scoped.members(first, last)
        whole = member_counts.whole_period(first, last)
        count: int | None = None
        if self.counts is not None and whole is not None:
            count = self.counts.get(whole, 0)
        elif self.counts is None and first == last:
            count = self.day_members.get(first, 0)
        else:
            count = self.distinct.get((first, last))
        if count is None:
            m = MemberDay
            count = int(
                await self.session.scalar(
                    select(func.count(func.distinct(m.member_id))).where(
                        m.store_id.in_(self.scope.store_ids), m.day >= first, m.day <= last
                    )
                )
                or 0
            )
        return count + self._live_correction(first, last)

    def _live_correction(self, first: date, last: date) -> int:
        """What the live days of first..last change in its distinct members: the stored count
        holds E | S (E: the members of its other stored days, S: those stored on its live
        days); the true one is E | L (L: those paying on its live days now). Only members
        in S ^ L can differ, and each is looked up in E."""
        live_keys = [k for k in self.live_keys if first <= k[1] <= last]
        if not live_keys:
            return 0
        if self.member_days and not self._other_days and not self._stored_on:
            keys = set(self.live_keys)
            for store_id, day, member_id in self.member_days:
                if (store_id, day) in keys:
                    self._stored_on[(store_id, day)].add(member_id)
                else:
                    self._other_days[member_id].append(day)
            for days in self._other_days.values():
                days.sort()
        if not self._live_on:
            for store_id, day, member_id in self.scope.live.members:
                if member_id in self.changed:
                    self._live_on[(store_id, day)].add(member_id)
        live: set[int] = set().union(*(self._live_on.get(k, ()) for k in live_keys))
        stored: set[int] = set().union(*(self._stored_on.get(k, ()) for k in live_keys))
        change = 0
        for member_id in live ^ stored:
            days = self._other_days.get(member_id, [])
            i = bisect_left(days, first)
            if i < len(days) and days[i] <= last:
                continue  # paid on another day of the window: counted either way
            change += 1 if member_id in live else -1
        return change

    def totals(self, first: date, last: date) -> dict[str, int]:
        """The additive figures of first..last (whole months read as one row)."""
        total = dict.fromkeys(ADDITIVE, 0)
        d = first
        while d <= last:
            if d in self.whole_months and months.month_end(d) <= last:
                row = self.months.get(d)
                d = months.month_end(d)
            else:
                row = self.days.get(d)
            if row is not None:
                for c in ADDITIVE:
                    total[c] += row[c]
            d += timedelta(days=1)
        return total

    async def figures(self, first: date, last: date) -> Figures:
        total = self.totals(first, last)
        kind = self.scope.kind
        return Figures(
            orders=total["orders"],
            sales_fen=total["sales_fen"],
            refunds=total["refunds"],
            refunds_fen=total["refunds_fen"],
            items=total["items"],
            paying_members=await self.members(first, last),
            member_sales_fen=total["member_sales_fen"] if kind == "sales" else None,
        )


async def series(
    session: AsyncSession, scope: Scope, *, first: date, last: date, granularity: Granularity
) -> dict[str, Any]:
    """Each period of the window with its previous period and the same period last year, and
    the window's totals beside the previous window and the same window last year."""
    ps = periods(first, last, granularity)
    prev_window = shift_window(ps, granularity, "previous")
    year_window = shift_window(ps, granularity, "last_year")
    lo = min(prev_window.start, year_window.start, ps[0].start)
    hi = ps[-1].end
    windows = [Period("", ps[0].start, ps[-1].end), prev_window, year_window]
    for p in ps:
        windows += [p, previous(p, granularity), last_year(p, granularity)]
    table = await DayTable(session, scope, lo, hi, [(w.start, w.end) for w in windows]).load()
    rows = []
    for p in ps:
        pp, ly = previous(p, granularity), last_year(p, granularity)
        rows.append(
            {
                "period": p.label,
                "start": p.start,
                "end": p.end,
                "current": (await table.figures(p.start, p.end)).as_dict(),
                "previous": (await table.figures(pp.start, pp.end)).as_dict(),
                "last_year": (await table.figures(ly.start, ly.end)).as_dict(),
            }
        )
    return {
        "granularity": granularity,
        "scope": scope.kind if scope.kind != "sales" else "stores",
        "store_ids": scope.store_ids,
        "start": ps[0].start,
        "end": ps[-1].end,
        "periods": rows,
        "total": {
            "start": ps[0].start,
            "end": ps[-1].end,
            "current": (await table.figures(ps[0].start, ps[-1].end)).as_dict(),
            "previous": (await table.figures(prev_window.start, prev_window.end)).as_dict(),
            "last_year": (await table.figures(year_window.start, year_window.end)).as_dict(),
        },
    }
