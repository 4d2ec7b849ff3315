"""Sales figures of a product, or of a category with everything below it: additive figures
per local day and distinct paying members over any window, read from the product and
category summaries (`scoped_days`) with the live tail in place of the stored rows of its
store days. The windows' distinct members are counted by the database in one statement."""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

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

from selfmart.analytics.scope import Scope
from selfmart.analytics.summaries import excluding, rows_table
from selfmart.models import CategoryDay, CategoryMember, ProductDay, ProductMember

#: the additive figures a scoped day row gives (named as in `sales.ADDITIVE`)
FIGURES = ("orders", "sales_fen", "items", "refunds", "refunds_fen")


class ScopedTable:
    """A product's or a category's days over first..last for the scope's stores."""

    def __init__(
        self,
        session: AsyncSession,
        scope: Scope,
        first: date,
        last: date,
        windows: Sequence[tuple[date, date]] = (),
    ) -> None:
        assert scope.kind in ("product", "category")
        self.session = session
        self.scope = scope
        self.first = first
        self.last = last
        self.windows = sorted(set(windows))
        self.live_keys = scope.live_keys(first, last)
        self.product = scope.kind == "product"
        #: distinct stored members of each window, the live days left out
        self.counts: dict[tuple[date, date], int] = {}
        #: (store, day) -> the members paying on that live day now
        self.live_members: dict[tuple[int, date], set[int]] = defaultdict(set)
        #: live members -> their stored days in the range (live days left out), sorted
        self.other_days: dict[int, list[date]] = defaultdict(list)

    def _member_model(self) -> tuple[Any, Any]:
        if self.product:
            return ProductMember, ProductMember.product_id == self.scope.product_id
        return CategoryMember, CategoryMember.category_id == self.scope.category_id

    def _stored_members(self, model: Any, match: Any) -> list[Any]:
        return [match, model.store_id.in_(self.scope.store_ids), excluding(model, self.live_keys)]

    async def load(self, days: dict[date, dict[str, int]]) -> ScopedTable:
        """Add the day rows into `days` and read what the windows' members need."""
        scope = self.scope
        if self.product:
            p = ProductDay
            sums: list[Any] = [p.orders, p.sales_fen, p.quantity, p.refunds, p.refunds_fen]
            model: Any = p
            match: Any = p.product_id == scope.product_id
        else:
            c = CategoryDay
            sums = [c.orders, c.sales_fen, c.items, c.refunds, c.refunds_fen]
            model, match = c, c.category_id == scope.category_id
        stmt = (
            select(model.day, *(func.sum(f).label(n) for f, n in zip(sums, FIGURES, strict=True)))
            .where(
                match,
                model.store_id.in_(scope.store_ids),
                model.day >= self.first,
                model.day <= self.last,
                excluding(model, self.live_keys),
            )
            .group_by(model.day)
        )
        for r in (await self.session.execute(stmt)).all():
            row = days[r.day]
            for f in FIGURES:
                row[f] += int(getattr(r, f) or 0)
        live_keys = set(self.live_keys)
        if self.product:
            for (s, d, product_id), live in scope.live.products.items():
                if (s, d) in live_keys and product_id == scope.product_id:
                    row = days[d]
                    row["orders"] += live["orders"]
                    row["sales_fen"] += live["sales_fen"]
                    row["items"] += live["quantity"]
                    row["refunds"] += live["refunds"]
                    row["refunds_fen"] += live["refunds_fen"]
            for s, d, product_id, member_id in scope.live.product_members:
                if (s, d) in live_keys and product_id == scope.product_id:
                    self.live_members[(s, d)].add(member_id)
        else:
            for (s, d, category_id), live in scope.live.categories.items():
                if (s, d) in live_keys and category_id == scope.category_id:
                    row = days[d]
                    for f in FIGURES:
                        row[f] += live[f]
            for s, d, category_id, member_id in scope.live.category_members:
                if (s, d) in live_keys and category_id == scope.category_id:
                    self.live_members[(s, d)].add(member_id)
        await self._load_members()
        return self

    def _buckets(self) -> tuple[list[tuple[int, date, date]], dict[tuple[date, date], range]]:
        """The windows cut into the disjoint runs of days their ends make (only runs some
        window covers), numbered in order; and each window as the range of runs it spans."""
        cuts = sorted(
            {a for a, _ in self.windows} | {b + timedelta(days=1) for _, b in self.windows}
        )
        runs = [
            (a, b - timedelta(days=1))
            for a, b in itertools.pairwise(cuts)
            if any(wa <= a and b - timedelta(days=1) <= wb for wa, wb in self.windows)
        ]
        index = {a: i for i, (a, _) in enumerate(runs)}
        ends = {b: i for i, (_, b) in enumerate(runs)}
        spans = {(a, b): range(index[a], ends[b] + 1) for a, b in self.windows}
        return [(i, a, b) for i, (a, b) in enumerate(runs)], spans

    async def _load_members(self) -> None:
        """One statement: the distinct stored members of every window (live days left out),
        and the stored days in the range of the members paying on a live day now.

        Every stored member row is read once, whatever the number of windows: each row falls
        in one run of days (`_buckets`); per member its distinct runs are listed in order with
        the run before (LAG), and a window counts a member at the first of its runs inside the
        window, the one whose previous run lies before the window (or that has none). The
        database returns only the count of each (run, previous run) pair; a window's distinct
        members are the sum over its runs of the pairs whose previous run is before it."""
        m, match = self._member_model()
        stored = self._stored_members(m, match)
        parts: list[Any] = []
        runs, spans = self._buckets() if self.windows else ([], {})
        if runs:
            postgres = self.session.get_bind().dialect.name == "postgresql"
            b = rows_table(
                postgres,
                "runs",
                (column("i", Integer), column("a", Date), column("b", Date)),
                runs,
            )
            # Each run an index range scan of its own rows (on PostgreSQL a LATERAL subquery
            # kept whole by OFFSET 0; joined plainly, it compared every row with every run).
            in_run = select(m.member_id).where(m.day >= b.c.a, m.day <= b.c.b, *stored)
            on: Any
            if postgres:
                rows: Any = in_run.offset(0).lateral("in_run")
                member, on = rows.c.member_id, true()
            else:
                rows, member = m, m.member_id
                on = and_(*in_run.whereclause.clauses)  # type: ignore[union-attr]
            before = func.lag(b.c.i).over(partition_by=member, order_by=b.c.i)
            listed = (
                select(b.c.i, before.label("p")).select_from(b).join(rows, on).subquery("listed")
            )
            # A member's first row in a run is the one whose previous row is in an earlier run.
            firsts = (
                select(listed.c.i, listed.c.p)
                .where(or_(listed.c.p.is_(None), listed.c.p != listed.c.i))
                .subquery("firsts")
            )
            parts.append(
                select(
                    literal("run", String).label("tag"),
                    null().cast(Date).label("d"),
                    cast(firsts.c.i, BigInteger).label("i"),
                    cast(func.coalesce(firsts.c.p, -1), BigInteger).label("p"),
                    cast(func.count(), BigInteger).label("v"),
                ).group_by(firsts.c.i, firsts.c.p)
            )
        live = sorted(set().union(*self.live_members.values()))
        if live:
            parts.append(
                select(
                    literal("member", String).label("tag"),
                    m.day.label("d"),
                    null().cast(BigInteger).label("i"),
                    null().cast(BigInteger).label("p"),
                    cast(m.member_id, BigInteger).label("v"),
                )
                .where(*stored, m.day >= self.first, m.day <= self.last, m.member_id.in_(live))
                .distinct()
            )
        self.counts = dict.fromkeys(self.windows, 0)
        if not parts:
            return
        firsts_of: list[tuple[int, int, int]] = []
        for r in (await self.session.execute(union_all(*parts))).all():
            if r.tag == "run":
                firsts_of.append((int(r.i), int(r.p), int(r.v)))
            else:
                self.other_days[int(r.v)].append(r.d)
        for window, span in spans.items():
            self.counts[window] = sum(n for i, p, n in firsts_of if i in span and p < span.start)
        for days in self.other_days.values():
            days.sort()

    async def members(self, first: date, last: date) -> int:
        """Distinct paying members over first..last: those of the stored days (live days left
        out) and those paying on its live days now who did not pay on one of those."""
        count = self.counts.get((first, last))
        if count is None:
            m, match = self._member_model()
            count = int(
                await self.session.scalar(
                    select(func.count(func.distinct(m.member_id))).where(
                        *self._stored_members(m, match), m.day >= first, m.day <= last
                    )
                )
                or 0
            )
            self.counts[(first, last)] = count
        live: set[int] = set().union(
            *(ms for (_, d), ms in self.live_members.items() if first <= d <= last)
        )
        for member_id in live:
            days = self.other_days.get(member_id, [])
            i = bisect_left(days, first)
            if not (i < len(days) and days[i] <= last):
                count += 1
        return count
