"""The sales statistics' live tail, kept in process between requests: the store days changed
since the last refresh, recomputed from the raw orders once and reused until the change feed
says one of them changed again.

Each request reads the change feed after the refresh mark (one statement, as before). Events
this process has not seen yet name the orders whose store days are recomputed; every other
live store day is taken from memory. What invalidates is the feed, not this process's own
writes, so an order paid or refunded by another process (which writes its event in the same
transaction) is seen by the next read; an event committed late, below ids already seen, is new
all the same (the seen ids are a set, not a high-water mark). When the mark moves (the refresh
ran) the days it took in leave the tail and the rest stay, each with its rows: a day's rows
are a function of its raw orders, whatever the mark (`_move`).

Only a transaction that has written nothing uses or fills the memory (PostgreSQL: no
transaction id assigned; SQLite: the driver has no transaction open): what it reads is
committed, so the same for every process. Anything else (a test's rolled-back writes, a request
that wrote before it read) computes its tail afresh, as before, and leaves the memory alone.

Tails are kept each with its own memory: the store-day and member-day rows
(`summaries.compute_sales`, for the sales and member statistics of stores, cities and the
chain), every summary row (`summaries.compute`, for rankings, mixes and heatmaps), and, for
the products and categories asked for lately, each one's own rows (`scoped_live.compute`, for
its statistics).
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import refresh, scoped_live, summaries
from selfmart.analytics.summaries import Key, Row, Summary

#: the Summary fields a tail holds, each keyed by tuples that start with (store, day)
_FIELDS = (
    "sales", "products", "members", "hours", "categories", "category_members", "product_members",
)  # fmt: skip
#: a live store day's recomputed rows: per Summary field, its rows by their full key
_Day = dict[str, dict[Any, Row]]

SALES = "sales"
FULL = "full"
#: the most change-feed events between an old and a new mark that a tail checks to keep its
#: days (one refresh's worth, about a minute of a chain's orders, is far fewer)
MOVE_LIMIT = 20_000


@dataclass
class Tail:
    """One database's live tail (of one kind) as this process knows it."""

    #: the refresh mark it was read after
    mark: int = -1
    #: ids of the events after the mark already taken in
    seen: set[int] = field(default_factory=set)
    #: store days changed after the mark (by the events seen)
    keys: set[Key] = field(default_factory=set)
    #: those of them recomputed, still valid
    days: dict[Key, _Day] = field(default_factory=dict)
    #: moves whenever a day is dropped or the mark moves: a request that computed days under
    #: an older epoch does not store them (they may predate the change that dropped them)
    epoch: int = 0
    #: each store's time zone when its days were computed (a change starts the tail again)
    zones: dict[int, str] = field(default_factory=dict)
    #: requests answered from memory alone / days recomputed (for tests and benchmarks)
    hits: int = 0
    computed: int = 0


#: a tail's kind: SALES, FULL, or one product's or category's own rows (kind, id)
Kind = str | tuple[str, int]
_tails: weakref.WeakKeyDictionary[Engine, dict[Kind, Tail]] = weakref.WeakKeyDictionary()
#: the products' and categories' tails kept at most (the least recently asked go first)
SCOPED_TAILS = 64


def tail_of(session: AsyncSession, kind: Kind = SALES) -> Tail:
    engine = session.get_bind().engine
    tails = _tails.get(engine)
    if tails is None:
        tails = _tails[engine] = {}
    tail = tails.pop(kind, None) or Tail()
    tails[kind] = tail  # last: the most recently asked
    scoped = [k for k in tails if isinstance(k, tuple)]
    for old in scoped[: max(0, len(scoped) - SCOPED_TAILS)]:
        del tails[old]
    return tail


def _split(summary: Summary) -> dict[Key, _Day]:
    out: dict[Key, _Day] = {k: {f: {} for f in _FIELDS} for k in summary.keys}
    for f in _FIELDS:
        for key, row in getattr(summary, f).items():
            out[key[:2]][f][key] = row
    return out


def _join(keys: set[Key], days: dict[Key, _Day]) -> Summary:
    out = Summary(keys=keys)
    for day in days.values():
        for f in _FIELDS:
            target = getattr(out, f)
            for key, row in day[f].items():
                target[key] = dict(row)
    return out


def forget(session: AsyncSession) -> None:
    """Drop what this process holds of the session's database's live tail."""
    _tails.pop(session.get_bind().engine, None)


async def _clean(session: AsyncSession, feed: refresh.Feed) -> bool:
    if feed.clean is not None:
        return feed.clean
    if session.get_bind().dialect.name != "sqlite":
        return False
    conn = await session.connection()
    raw: Any = (await conn.get_raw_connection()).driver_connection
    return not bool(getattr(raw, "in_transaction", True))


Compute = Callable[[AsyncSession, set[Key]], Awaitable[Summary]]


async def sales_tail(session: AsyncSession, store_ids: list[int], zones: dict[int, str]) -> Summary:
    """The store-day and member-day rows of the given stores' live days (what
    `summaries.compute_sales` gives for them), from memory where the feed allows."""

    async def compute(s: AsyncSession, keys: set[Key]) -> Summary:
        return await summaries.compute_sales(s, keys, zones)

    return await _tail(session, store_ids, zones, SALES, compute)


async def full_tail(session: AsyncSession, store_ids: list[int], zones: dict[int, str]) -> Summary:
    """The store-day, product, member and hour rows of the given stores' live days (what
    `summaries.compute` gives for them, without the category and scoped member rows, which
    only a product's or a category's own statistics read: `scoped_tail`), from memory where
    the feed allows: what rankings, mixes and heatmaps read."""

    async def compute(s: AsyncSession, keys: set[Key]) -> Summary:
        return await summaries.compute(s, keys, scoped=False)

    return await _tail(session, store_ids, zones, FULL, compute)


async def scoped_tail(
    session: AsyncSession, store_ids: list[int], zones: dict[int, str], target: scoped_live.Target
) -> Summary:
    """A product's (its product and product-member rows) or a category's (its category and
    category-member rows) rows of the given stores' live days, summed by the database
    (`scoped_live.compute`), from memory where the feed allows: what the product's or the
    category's own statistics read."""

    async def compute(s: AsyncSession, keys: set[Key]) -> Summary:
        return await scoped_live.compute(s, keys, zones, target)

    kind: Kind = (
        ("product", target.product_id)
        if target.product_id is not None
        else ("category", target.category_id or 0)
    )
    return await _tail(session, store_ids, zones, kind, compute)


async def _move(session: AsyncSession, tail: Tail, feed: refresh.Feed) -> bool:
    """Follow the refresh mark forward, keeping what is still good: the store days of the
    events seen that are still after the mark stay live, and each one's rows (a function of
    the raw orders, whatever the mark) stay unless an event this process never saw lies
    between the old mark and the new one (committed after the last read, below ids already
    seen): its store days are recomputed. The days the refresh has taken in are dropped. Not
    following (a mark gone back, or moved again meanwhile): start the tail again, or answer
    this request afresh (False)."""
    old = tail.mark
    between = (
        []
        if old < 0 or feed.mark < old
        else await refresh.events_between(session, old, feed.mark, limit=MOVE_LIMIT + 1)
    )
    if old < 0 or feed.mark < old or len(between) > MOVE_LIMIT:
        # Nothing to keep, or a jump too far to check event by event (a rebuild after the
        # refresh stood still): start again.
        tail.mark, tail.seen, tail.keys, tail.days = feed.mark, set(), set(), {}
        tail.epoch += 1
        return True
    still = [(e, o) for e, o, _ in feed.events if e in tail.seen]
    late = [o for e, o in between if e not in tail.seen]
    stale = await summaries.days_of_orders(session, set(late))
    keys = await summaries.days_of_orders(session, {o for _, o in still})
    if tail.mark != old:  # another request moved it meanwhile
        return tail.mark == feed.mark
    tail.mark = feed.mark
    tail.seen = {e for e, _ in still}
    tail.keys = keys
    tail.days = {k: d for k, d in tail.days.items() if k in keys and k not in stale}
    tail.epoch += 1
    return True


async def _tail(
    session: AsyncSession, store_ids: list[int], zones: dict[int, str], kind: Kind, compute: Compute
) -> Summary:
    feed = await refresh.read_feed(session, ask_clean=True)
    mine = set(store_ids)
    if not await _clean(session, feed):
        keys = await summaries.days_of_orders(session, {o for _, o, _ in feed.events})
        return await compute(session, {k for k in keys if k[0] in mine})
    tail = tail_of(session, kind)
    if any(tail.zones.get(s, z) != z for s, z in zones.items()):
        # A store's time zone changed: its days are other days; start again.
        tail.mark, tail.zones = -1, {}
    tail.zones.update(zones)
    if tail.mark != feed.mark and not await _move(session, tail, feed):
        keys = await summaries.days_of_orders(session, {o for _, o, _ in feed.events})
        return await compute(session, {k for k in keys if k[0] in mine})
    new = [(e, o) for e, o, _ in feed.events if e not in tail.seen]
    if new:
        changed = await summaries.days_of_orders(session, {o for _, o in new})
        if tail.mark != feed.mark:
            # Another request read another mark meanwhile and started the tail again: answer
            # this one afresh.
            keys = await summaries.days_of_orders(session, {o for _, o, _ in feed.events})
            return await compute(session, {k for k in keys if k[0] in mine})
        tail.keys |= changed
        for key in changed:
            tail.days.pop(key, None)
        tail.seen.update(e for e, _ in new)
        tail.epoch += 1
    keys = {k for k in tail.keys if k[0] in mine}
    have = {k: tail.days[k] for k in keys if k in tail.days}
    epoch = tail.epoch
    missing = keys - have.keys()
    if missing:
        fresh = _split(await compute(session, missing))
        tail.computed += len(missing)
        if tail.epoch == epoch:
            tail.days.update(fresh)
        have.update(fresh)
    else:
        tail.hits += 1
    return _join(keys, have)
