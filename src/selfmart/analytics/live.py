"""The sales statistics' live tail, kept in process between requests: the store days changed
since the last refresh, recomputed from the raw orders once and reused until the change feed
says one of them changed again.

Each request reads the change feed after the refresh mark (one statement, as before). Events
this process has not seen yet name the orders whose store days are recomputed; every other
live store day is taken from memory. What invalidates is the feed, not this process's own
writes, so an order paid or refunded by another process (which writes its event in the same
transaction) is seen by the next read; an event committed late, below ids already seen, is new
all the same (the seen ids are a set, not a high-water mark). When the mark moves (the refresh
ran) everything is dropped and the tail is built again from the new mark.

Only a transaction that has written nothing uses or fills the memory (PostgreSQL: no
transaction id assigned; SQLite: the driver has no transaction open): what it reads is
committed, so the same for every process. Anything else (a test's rolled-back writes, a request
that wrote before it read) computes its tail afresh, as before, and leaves the memory alone.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import refresh, summaries
from selfmart.analytics.summaries import Key, Row, Summary


@dataclass
class _Day:
    """A live store day's recomputed rows: its store-day row (None when nothing was sold or
    refunded) and its member-day rows by member."""

    sales: Row | None
    members: dict[int, Row]


@dataclass
class Tail:
    """One database's live tail as this process knows it."""

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
    #: requests answered from memory alone / days recomputed (for tests and benchmarks)
    hits: int = 0
    computed: int = 0


_tails: weakref.WeakKeyDictionary[Engine, Tail] = weakref.WeakKeyDictionary()


def tail_of(session: AsyncSession) -> Tail:
    engine = session.get_bind().engine
    tail = _tails.get(engine)
    if tail is None:
        tail = _tails[engine] = Tail()
    return tail


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


async def sales_tail(session: AsyncSession, store_ids: list[int], zones: dict[int, str]) -> Summary:
    """The store-day and member-day rows of the given stores' live days (what
    `summaries.compute_sales` gives for them), from memory where the feed allows."""
    feed = await refresh.read_feed(session, ask_clean=True)
    mine = set(store_ids)
    if not await _clean(session, feed):
        keys = await summaries.days_of_orders(session, {o for _, o, _ in feed.events})
        return await summaries.compute_sales(session, {k for k in keys if k[0] in mine}, zones)
    tail = tail_of(session)
    if tail.mark != feed.mark:
        tail.mark, tail.seen, tail.keys, tail.days = feed.mark, set(), set(), {}
        tail.epoch += 1
    new = [(e, o) for e, o, _ in feed.events if e not in tail.seen]
    if new:
        changed = await summaries.days_of_orders(session, {o for _, o in new})
        if tail.mark != feed.mark:
            # Another request read another mark meanwhile and started the tail again: answer
            # this one afresh.
            keys = await summaries.days_of_orders(session, {o for _, o, _ in feed.events})
            return await summaries.compute_sales(session, {k for k in keys if k[0] in mine}, zones)
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
        computed = await summaries.compute_sales(session, missing, zones)
        fresh = {k: _Day(computed.sales.get(k), {}) for k in missing}
        for (store_id, day, member_id), row in computed.members.items():
            fresh[(store_id, day)].members[member_id] = row
        tail.computed += len(missing)
        if tail.epoch == epoch:
            tail.days.update(fresh)
        have.update(fresh)
    else:
        tail.hits += 1
    out = Summary(keys=keys)
    for key, got in have.items():
        if got.sales is not None:
            out.sales[key] = dict(got.sales)
        for member_id, row in got.members.items():
            out.members[(*key, member_id)] = dict(row)
    return out
