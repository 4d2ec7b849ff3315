"""Frequently bought together: runs of the basket analysis (started on demand or nightly, run by
a job with progress) and the reading of what they found. Reading never recomputes.

A basket is one order's distinct products, for orders paid (`paid_at`) in the window — local
days in each store's own zone — and not cancelled, closed or wholly refunded; a product is in
the basket while the customer kept at least one unit of it (units taken off the bill before
payment and units refunded or being refunded do not count). See docs/analytics.md.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Select, and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import basket_mining as mining
from selfmart.analytics import scope as scopes
from selfmart.analytics.basket_schemas import BasketRunCreate, RuleSort
from selfmart.audit import service as audit
from selfmart.config import get_settings
from selfmart.errors import NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.jobs import service as jobs
from selfmart.kit.pagination import PageParams, paginate
from selfmart.kit.time import local_day_bounds, utcnow
from selfmart.models import (
    BasketItem,
    BasketRule,
    BasketRun,
    JobRun,
    Order,
    OrderLine,
    Product,
    Store,
)

log = logging.getLogger(__name__)
S = TypeVar("S", bound=Select[Any])

JOB = "analytics.basket_rules"
#: Orders in these states hold no basket.
NOT_BASKETS = ("cancelled", "closed", "refunded")
#: The longest window, in days (a year and a few days: the same as the statistics).
MAX_WINDOW_DAYS = 370
#: Rules kept per run; beyond, the strongest by lift (then confidence) are kept.
MAX_RULES = 100_000
#: Rows per insert statement when storing a run.
INSERT_CHUNK = 1_000
#: Suggestions: a shelf pair needs this lift and confidence; a bundle this lift.
SHELF_MIN_LIFT = 1.5
SHELF_MIN_CONFIDENCE = 0.2
BUNDLE_MIN_LIFT = 1.2


# ------------------------------------------------------------------ starting a run


def check_window(first: date, last: date) -> None:
    if last < first:
        raise ValidationFailed("The window ends before it starts", field="end")
    if (last - first).days >= MAX_WINDOW_DAYS:
        raise ValidationFailed(f"The window is longer than {MAX_WINDOW_DAYS} days", field="end")


async def _check_store(session: AsyncSession, actor: Actor, store_id: int | None) -> None:
    if store_id is None:
        if actor.store_ids is not None:
            raise ValidationFailed(
                "Choose a store: the whole chain is for those who see every store",
                field="store_id",
            )
        return
    await scopes.resolve(session, actor=actor, store_id=store_id)  # 404 when not one's own


async def create_run(
    session: AsyncSession, body: BasketRunCreate, *, actor: Actor, trigger: str = "manual"
) -> BasketRun:
    """Record a run and queue its job (it starts after commit)."""
    check_window(body.start, body.end)
    await _check_store(session, actor, body.store_id)
    run = BasketRun(
        store_id=body.store_id,
        first_day=body.start,
        last_day=body.end,
        min_support=body.min_support,
        min_confidence=body.min_confidence,
        min_lift=body.min_lift,
        max_len=body.max_len,
        trigger=trigger,
        status="queued",
        baskets=0,
        products=0,
        itemsets=0,
        rules=0,
        truncated=False,
        created_by=actor.id if actor.kind == "user" else None,
        created_at=utcnow(),
    )
    session.add(run)
    await session.flush()
    job = await jobs.start_job(
        session, kind=JOB, created_by=actor, params={"run_id": run.id}, total=100
    )
    run.job_id = job.id
    await session.flush()
    await audit.record(
        session,
        actor,
        "analytics.basket_run",
        "basket_run",
        run.id,
        store_id=body.store_id,
        after=body.model_dump(mode="json") | {"trigger": trigger, "job_id": job.id},
    )
    return run


# ------------------------------------------------------------------ the job


Report = Callable[[int], Awaitable[None]]


async def read_baskets(
    session: AsyncSession, store_ids: Sequence[int] | None, first: date, last: date
) -> mining.Baskets:
    """The baskets of the stores (None: every store) over the window of local days."""
    stmt = select(Store.id, Store.timezone)
    if store_ids is not None:
        stmt = stmt.where(Store.id.in_(list(store_ids)))
    by_zone: dict[str, list[int]] = defaultdict(list)
    for row in (await session.execute(stmt)).all():
        by_zone[row.timezone or "Asia/Shanghai"].append(row.id)
    keys: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    products: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    for zone, stores in by_zone.items():
        tz = ZoneInfo(zone)
        start, _ = local_day_bounds(first, tz)
        _, end = local_day_bounds(last, tz)
        query = (
            select(OrderLine.order_id, OrderLine.product_id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(
                Order.store_id.in_(stores),
                Order.paid_at >= start,
                Order.paid_at < end,
                Order.status.not_in(NOT_BASKETS),
                OrderLine.quantity - OrderLine.cancelled_qty - OrderLine.refunded_qty > 0,
            )
            .execution_options(yield_per=50_000)
        )
        result = await session.stream(query)
        async for part in result.partitions():
            arr = np.array(part, dtype=np.int64).reshape(-1, 2)
            keys.append(arr[:, 0])
            products.append(arr[:, 1])
    if not keys:
        return mining.Baskets.from_pairs(np.zeros(0, np.int64), np.zeros(0, np.int64))
    return mining.Baskets.from_pairs(np.concatenate(keys), np.concatenate(products))


def _rule_rows(run_id: int, rules: mining.Rules) -> tuple[list[dict[str, Any]], bool]:
    order = np.lexsort((-rules.confidence, -rules.lift))
    truncated = len(order) > MAX_RULES
    rows = []
    for i in order[:MAX_RULES].tolist():
        a = sorted(rules.antecedents[i])
        c = sorted(rules.consequents[i])
        both = sorted(a + c)
        items: list[int | None] = [*both, *([None] * (4 - len(both)))]
        rows.append(
            {
                "run_id": run_id,
                "size": len(a) + len(c),
                "antecedent": a,
                "consequent": c,
                "antecedent_first": a[0],
                "count": int(rules.count[i]),
                "antecedent_count": int(rules.antecedent_count[i]),
                "consequent_count": int(rules.consequent_count[i]),
                "support": float(rules.support[i]),
                "confidence": float(rules.confidence[i]),
                "lift": float(rules.lift[i]),
                "p1": items[0],
                "p2": items[1],
                "p3": items[2],
                "p4": items[3],
            }
        )
    return rows, truncated


async def compute_run(session: AsyncSession, run: BasketRun, report: Report) -> dict[str, Any]:
    """Read the run's baskets, mine them and store what was found (in `session`, which the
    caller commits)."""
    await report(5)
    stores = None if run.store_id is None else [run.store_id]
    baskets = await read_baskets(session, stores, run.first_day, run.last_day)
    await report(50)
    mined = mining.frequent_itemsets(baskets, min_support=run.min_support, max_len=run.max_len)
    rules = mining.association_rules(
        mined, min_confidence=run.min_confidence, min_lift=run.min_lift
    )
    await report(75)
    await session.execute(delete(BasketItem).where(BasketItem.run_id == run.id))
    await session.execute(delete(BasketRule).where(BasketRule.run_id == run.id))
    singles = mined.levels[1]
    items = [
        {
            "run_id": run.id,
            "product_id": int(mined.labels[s[0]]),
            "count": int(c),
            "support": float(c) / baskets.count,
        }
        for s, c in zip(singles.sets.tolist(), singles.counts.tolist(), strict=True)
    ]
    for i in range(0, len(items), INSERT_CHUNK):
        await session.execute(insert(BasketItem), items[i : i + INSERT_CHUNK])
    rows, truncated = _rule_rows(run.id, rules)
    for i in range(0, len(rows), INSERT_CHUNK):
        await session.execute(insert(BasketRule), rows[i : i + INSERT_CHUNK])
    figures = {
        "baskets": baskets.count,
        "products": int(np.count_nonzero(np.bincount(baskets.items))) if baskets.count else 0,
        "itemsets": sum(len(level.counts) for level in mined.levels.values()),
        "rules": len(rows),
        "truncated": truncated,
    }
    await session.execute(
        update(BasketRun)
        .where(BasketRun.id == run.id)
        .values(status="succeeded", finished_at=utcnow(), **figures)
    )
    return figures


# ------------------------------------------------------------------ reading


def _visible(stmt: S, actor: Actor) -> S:
    """Runs the actor may see: a store's runs for its people, the chain's for those who see
    every store (a chain figure would tell of stores one may not see)."""
    if actor.store_ids is None:
        return stmt
    return stmt.where(BasketRun.store_id.in_(sorted(actor.store_ids)))


async def _progress(session: AsyncSession, runs: Sequence[BasketRun]) -> dict[int, int]:
    ids = [r.job_id for r in runs if r.job_id is not None and r.status in {"queued", "running"}]
    if not ids:
        return {}
    rows = await session.execute(select(JobRun.id, JobRun.progress).where(JobRun.id.in_(ids)))
    return {r.id: r.progress for r in rows.all()}


async def _as_read(session: AsyncSession, runs: Sequence[BasketRun]) -> list[dict[str, Any]]:
    store_ids = sorted({r.store_id for r in runs if r.store_id is not None})
    names: dict[int, str] = {}
    if store_ids:
        rows = await session.execute(select(Store.id, Store.name).where(Store.id.in_(store_ids)))
        names = {r.id: r.name for r in rows.all()}
    progress = await _progress(session, runs)
    out = []
    for r in runs:
        data = {c.key: getattr(r, c.key) for c in BasketRun.__table__.columns}
        data["store_name"] = names.get(r.store_id) if r.store_id is not None else None
        data["progress"] = 100 if r.status == "succeeded" else progress.get(r.job_id or 0, 0)
        out.append(data)
    return out


async def list_runs(
    session: AsyncSession,
    *,
    actor: Actor,
    params: PageParams,
    store_id: int | None = None,
    chain: bool = False,
    status: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    stmt = _visible(select(BasketRun), actor)
    if store_id is not None:
        await scopes.resolve(session, actor=actor, store_id=store_id)
        stmt = stmt.where(BasketRun.store_id == store_id)
    elif chain:
        stmt = stmt.where(BasketRun.store_id.is_(None))
    if status is not None:
        stmt = stmt.where(BasketRun.status == status)
    runs, total = await paginate(session, stmt.order_by(BasketRun.id.desc()), params)
    return await _as_read(session, runs), total


async def get_run(session: AsyncSession, run_id: int, *, actor: Actor) -> BasketRun:
    run = await session.scalar(_visible(select(BasketRun).where(BasketRun.id == run_id), actor))
    if run is None:
        raise NotFound("No such basket analysis", field="run_id")
    return run


async def read_run(session: AsyncSession, run_id: int, *, actor: Actor) -> dict[str, Any]:
    return (await _as_read(session, [await get_run(session, run_id, actor=actor)]))[0]


async def _products(session: AsyncSession, ids: set[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    chunk = sorted(ids)
    for i in range(0, len(chunk), 900):
        rows = await session.execute(
            select(Product.id, Product.name, Product.spec).where(Product.id.in_(chunk[i : i + 900]))
        )
        for r in rows.all():
            out[r.id] = {"product_id": r.id, "name": r.name, "spec": r.spec or ""}
    return out


def _ref(products: dict[int, dict[str, Any]], pid: int) -> dict[str, Any]:
    return products.get(pid) or {"product_id": pid, "name": f"#{pid}", "spec": ""}


async def rules(
    session: AsyncSession,
    run_id: int,
    *,
    actor: Actor,
    params: PageParams,
    product_id: int | None = None,
    min_support: float | None = None,
    min_confidence: float | None = None,
    min_lift: float | None = None,
    items: int | None = None,
    sort: RuleSort = "lift",
) -> tuple[list[dict[str, Any]], int]:
    run = await get_run(session, run_id, actor=actor)
    stmt = select(BasketRule).where(BasketRule.run_id == run.id)
    if product_id is not None:
        await scopes.resolve(session, actor=actor, product_id=product_id)
        stmt = stmt.where(
            or_(
                BasketRule.p1 == product_id,
                BasketRule.p2 == product_id,
                BasketRule.p3 == product_id,
                BasketRule.p4 == product_id,
            )
        )
    if min_support is not None:
        stmt = stmt.where(BasketRule.support >= min_support)
    if min_confidence is not None:
        stmt = stmt.where(BasketRule.confidence >= min_confidence)
    if min_lift is not None:
        stmt = stmt.where(BasketRule.lift >= min_lift)
    if items is not None:
        stmt = stmt.where(BasketRule.size == items)
    key = {"lift": BasketRule.lift, "confidence": BasketRule.confidence}.get(
        sort, BasketRule.support
    )
    stmt = stmt.order_by(key.desc(), BasketRule.id)
    found, total = await paginate(session, stmt, params)
    names = await _products(session, {p for r in found for p in (*r.antecedent, *r.consequent)})
    rows = [
        {
            "id": r.id,
            "size": r.size,
            "antecedent": [_ref(names, p) for p in r.antecedent],
            "consequent": [_ref(names, p) for p in r.consequent],
            "count": r.count,
            "antecedent_count": r.antecedent_count,
            "consequent_count": r.consequent_count,
            "support": r.support,
            "confidence": r.confidence,
            "lift": r.lift,
        }
        for r in found
    ]
    return rows, total


async def run_products(
    session: AsyncSession, run_id: int, *, actor: Actor, q: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The run's frequent products, the most frequent first (a name filter for pickers)."""
    run = await get_run(session, run_id, actor=actor)
    stmt = (
        select(
            BasketItem.product_id, BasketItem.count, BasketItem.support, Product.name, Product.spec
        )
        .join(Product, Product.id == BasketItem.product_id)
        .where(BasketItem.run_id == run.id)
    )
    if q:
        stmt = stmt.where(Product.name.contains(q, autoescape=True))
    rows = await session.execute(
        stmt.order_by(BasketItem.count.desc(), BasketItem.product_id).limit(limit)
    )
    return [
        {
            "product_id": r.product_id,
            "name": r.name,
            "spec": r.spec or "",
            "count": r.count,
            "support": r.support,
        }
        for r in rows.all()
    ]


async def bought_with(
    session: AsyncSession, run_id: int, product_id: int, *, actor: Actor, limit: int = 10
) -> dict[str, Any]:
    """The product's partners: pair rules product -> partner, the most confident first."""
    run = await get_run(session, run_id, actor=actor)
    await scopes.resolve(session, actor=actor, product_id=product_id)
    item = await session.scalar(
        select(BasketItem).where(BasketItem.run_id == run.id, BasketItem.product_id == product_id)
    )
    found = (
        await session.scalars(
            select(BasketRule)
            .where(
                BasketRule.run_id == run.id,
                BasketRule.size == 2,
                BasketRule.antecedent_first == product_id,
            )
            .order_by(BasketRule.confidence.desc(), BasketRule.lift.desc(), BasketRule.id)
            .limit(limit)
        )
    ).all()
    names = await _products(session, {product_id, *(r.consequent[0] for r in found)})
    return {
        "product": _ref(names, product_id),
        "count": item.count if item else None,
        "support": item.support if item else None,
        "partners": [
            {
                "product": _ref(names, r.consequent[0]),
                "count": r.count,
                "support": r.support,
                "confidence": r.confidence,
                "lift": r.lift,
            }
            for r in found
        ],
    }


async def _pairs(session: AsyncSession, run_id: int) -> list[BasketRule]:
    return list(
        (
            await session.scalars(
                select(BasketRule).where(BasketRule.run_id == run_id, BasketRule.size == 2)
            )
        ).all()
    )


def _edges(pairs: Sequence[BasketRule]) -> list[dict[str, Any]]:
    """Pair rules a -> b and b -> a as one edge each (source: the side with the higher
    confidence towards the other)."""
    both: dict[tuple[int, int], dict[int, BasketRule]] = defaultdict(dict)
    for r in pairs:
        a, c = r.antecedent[0], r.consequent[0]
        both[(min(a, c), max(a, c))][a] = r
    edges = []
    for sides in both.values():
        first = max(sides.values(), key=lambda r: (r.confidence, -r.antecedent[0]))
        src, dst = first.antecedent[0], first.consequent[0]
        back = sides.get(dst)
        edges.append(
            {
                "source": src,
                "target": dst,
                "count": first.count,
                "support": first.support,
                "lift": first.lift,
                "confidence": first.confidence,
                "confidence_back": back.confidence
                if back
                else first.count / first.consequent_count,
            }
        )
    return edges


async def graph(
    session: AsyncSession, run_id: int, *, actor: Actor, limit: int = 60
) -> dict[str, Any]:
    """The strongest pairs (by lift, then baskets) as a graph of products."""
    run = await get_run(session, run_id, actor=actor)
    edges = sorted(
        _edges(await _pairs(session, run.id)),
        key=lambda e: (-e["lift"], -e["count"], e["source"], e["target"]),
    )[:limit]
    ids = {e["source"] for e in edges} | {e["target"] for e in edges}
    items = (
        await session.scalars(
            select(BasketItem).where(
                BasketItem.run_id == run.id, BasketItem.product_id.in_(sorted(ids) or [0])
            )
        )
    ).all()
    names = await _products(session, ids)
    nodes = [
        {
            "product_id": i.product_id,
            "name": _ref(names, i.product_id)["name"],
            "spec": _ref(names, i.product_id)["spec"],
            "count": i.count,
            "support": i.support,
        }
        for i in sorted(items, key=lambda i: i.product_id)
    ]
    return {"nodes": nodes, "edges": edges}


async def suggestions(
    session: AsyncSession, run_id: int, *, actor: Actor, limit: int = 10
) -> list[dict[str, Any]]:
    """Shelf placements (pairs far more often together than by chance, and likely: lift and
    confidence both high) and bundles (sets of two or more bought together most often, with a
    lift above chance; the larger sets first)."""
    run = await get_run(session, run_id, actor=actor)
    shelf = [
        e
        for e in _edges(await _pairs(session, run.id))
        if e["lift"] >= SHELF_MIN_LIFT and e["confidence"] >= SHELF_MIN_CONFIDENCE
    ]
    shelf.sort(key=lambda e: (-e["lift"] * e["confidence"], -e["count"], e["source"]))
    # One bundle per itemset: its rule with the highest confidence speaks for it.
    sets: dict[tuple[int, ...], BasketRule] = {}
    for r in (
        await session.scalars(
            select(BasketRule).where(
                BasketRule.run_id == run.id, BasketRule.lift >= BUNDLE_MIN_LIFT
            )
        )
    ).all():
        key = tuple(sorted((*r.antecedent, *r.consequent)))
        if key not in sets or r.confidence > sets[key].confidence:
            sets[key] = r
    bundles = sorted(sets.items(), key=lambda kv: (-len(kv[0]), -kv[1].count, kv[0]))[:limit]
    ids = {p for k, _ in bundles for p in k} | {
        p for e in shelf[:limit] for p in (e["source"], e["target"])
    }
    names = await _products(session, ids)
    out: list[dict[str, Any]] = [
        {
            "kind": "shelf",
            "products": [_ref(names, e["source"]), _ref(names, e["target"])],
            "count": e["count"],
            "support": e["support"],
            "confidence": e["confidence"],
            "lift": e["lift"],
        }
        for e in shelf[:limit]
    ]
    out += [
        {
            "kind": "bundle",
            "products": [_ref(names, p) for p in (*r.antecedent, *r.consequent)],
            "count": r.count,
            "support": r.support,
            "confidence": r.confidence,
            "lift": r.lift,
        }
        for _, r in bundles
    ]
    return out


# ------------------------------------------------------------------ nightly


NIGHTLY_WINDOW_DAYS = 30
NIGHTLY_KEEP_DAYS = 90


async def nightly(session: AsyncSession, *, actor: Actor) -> list[int]:
    """Queue the chain's run and every open store's over the last 30 local days (to
    yesterday); drop nightly runs older than 90 days and runs started by hand older than
    `analytics_manual_basket_run_keep_days` (a year by default)."""
    today = utcnow().date()
    body = {"start": today - timedelta(days=NIGHTLY_WINDOW_DAYS), "end": today - timedelta(days=1)}
    cutoff = utcnow() - timedelta(days=NIGHTLY_KEEP_DAYS)
    manual_cutoff = utcnow() - timedelta(days=get_settings().analytics_manual_basket_run_keep_days)
    await session.execute(
        delete(BasketRun).where(
            or_(
                and_(BasketRun.trigger == "nightly", BasketRun.created_at < cutoff),
                and_(BasketRun.trigger != "nightly", BasketRun.created_at < manual_cutoff),
            )
        )
    )
    stores = (await session.scalars(select(Store.id).where(Store.status == "active"))).all()
    runs = [await create_run(session, BasketRunCreate(**body), actor=actor, trigger="nightly")]
    for store_id in stores:
        runs.append(
            await create_run(
                session,
                BasketRunCreate(store_id=store_id, **body),
                actor=actor,
                trigger="nightly",
            )
        )
    return [r.id for r in runs]
