"""Frequently bought together is exact: support, confidence and lift of every pair and triple
rule equal mlxtend's fpgrowth + association_rules on the same baskets — first on baskets in
memory, then on orders in the database (on both backends) read and mined by the job."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pandas as pd
import pytest
from mlxtend.frequent_patterns import association_rules, fpgrowth
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics.basket_mining import Baskets, frequent_itemsets, top_partners
from selfmart.analytics.basket_mining import association_rules as our_rules
from selfmart.models import AuditLog, Order, OrderLine, Product, Store
from tests.analytics.builders import refund, sale
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_product

RuleKey = tuple[tuple[int, ...], tuple[int, ...]]
Figures = tuple[float, float, float]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def reference(
    baskets: list[set[int]], *, min_support: float, min_confidence: float, max_len: int
) -> tuple[dict[tuple[int, ...], float], dict[RuleKey, Figures]]:
    """mlxtend's frequent itemsets (support) and rules (support, confidence, lift)."""
    labels = sorted({p for b in baskets for p in b})
    df = pd.DataFrame([[p in b for p in labels] for b in baskets], columns=labels)
    itemsets = fpgrowth(df, min_support=min_support, use_colnames=True, max_len=max_len)
    sets = {
        tuple(sorted(s)): float(v) for s, v in zip(itemsets.itemsets, itemsets.support, strict=True)
    }
    rules = association_rules(
        itemsets, num_itemsets=len(baskets), metric="confidence", min_threshold=min_confidence
    )
    found = {
        (tuple(sorted(a)), tuple(sorted(c))): (float(s), float(cf), float(lf))
        for a, c, s, cf, lf in zip(
            rules.antecedents,
            rules.consequents,
            rules.support,
            rules.confidence,
            rules.lift,
            strict=True,
        )
    }
    return sets, found


def random_baskets(seed: int, n: int, products: list[int]) -> list[set[int]]:
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(products))]
    out = []
    for _ in range(n):
        size = rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 7])
        basket = set(rng.choices(products, weights=weights, k=size))
        if products[0] in basket and rng.random() < 0.6:  # a planted companion
            basket.add(products[-1])
        out.append(basket)
    return out


@pytest.mark.parametrize(
    ("seed", "min_support", "min_confidence", "max_len"),
    [(1, 0.02, 0.1, 3), (2, 0.005, 0.0, 3), (3, 0.03, 0.3, 4), (4, 0.01, 0.0, 2)],
)
def test_itemsets_and_rules_equal_mlxtend_in_memory(
    seed: int, min_support: float, min_confidence: float, max_len: int
) -> None:
    baskets = random_baskets(seed, 400, list(range(101, 116)))
    mined = frequent_itemsets(
        Baskets.from_lists([sorted(b) for b in baskets]), min_support=min_support, max_len=max_len
    )
    sets, ref_rules = reference(
        baskets, min_support=min_support, min_confidence=min_confidence, max_len=max_len
    )
    ours = {k: c / len(baskets) for k, c in mined.itemsets().items()}
    assert ours == sets
    assert any(len(k) == min(max_len, 3) for k in sets)  # triples are there to compare
    rules = our_rules(mined, min_confidence=min_confidence)
    got = {
        (a, c): (float(s), float(cf), float(lf))
        for a, c, s, cf, lf in zip(
            rules.antecedents,
            rules.consequents,
            rules.support,
            rules.confidence,
            rules.lift,
            strict=True,
        )
    }
    # The same float operations as the reference: equal to the last bit, not just close.
    assert got == ref_rules
    assert any(len(a) + len(c) == min(max_len, 3) for a, c in got)


def test_thresholds_on_the_edge_and_empty_baskets() -> None:
    # 10 baskets (two of them empty): {1,2} in 3, {1} in 5, {2} in 4.
    lists = [[1, 2], [1, 2], [1, 2], [1], [1], [2], [3], [3], [], []]
    b = Baskets.from_lists(lists)
    assert b.count == 10
    mined = frequent_itemsets(b, min_support=0.3, max_len=3)
    assert mined.itemsets() == {(1,): 5, (2,): 4, (1, 2): 3}
    rules = our_rules(mined, min_confidence=0.75)  # 2 -> 1 is exactly 3/4; 1 -> 2 is 3/5
    assert list(zip(rules.antecedents, rules.consequents, strict=True)) == [((2,), (1,))]
    assert rules.lift[0] == pytest.approx(0.75 / 0.5)
    assert top_partners(mined) == {1: [(2, 3)], 2: [(1, 3)]}
    nothing = frequent_itemsets(Baskets.from_lists([]), min_support=0.1, max_len=3)
    assert nothing.itemsets() == {}
    with pytest.raises(ValueError, match="min_support"):
        frequent_itemsets(b, min_support=0, max_len=2)


def test_top_partners_are_the_most_frequent_pairs() -> None:
    baskets = random_baskets(7, 300, list(range(1, 13)))
    mined = frequent_itemsets(
        Baskets.from_lists([sorted(x) for x in baskets]), min_support=1 / 300, max_len=2
    )
    partners = top_partners(mined, 3)
    for product, top in partners.items():
        together = {
            other: sum(1 for b in baskets if product in b and other in b)
            for other in range(1, 13)
            if other != product
        }
        expected = sorted(
            ((o, n) for o, n in together.items() if n > 0), key=lambda x: (-x[1], x[0])
        )[:3]
        assert top == expected


# ---------------------------------------------------------------- through the database


async def _headers(session: AsyncSession, **kwargs: Any) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, **kwargs))


async def _run(client: httpx.AsyncClient, h: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/v1/analytics/basket-runs", json=body, headers=h)


async def _all_rules(client: httpx.AsyncClient, h: dict[str, str], run_id: int) -> list[Any]:
    out: list[Any] = []
    page = 1
    while True:
        r = await client.get(
            f"/api/v1/analytics/basket-runs/{run_id}/rules",
            params={"page": page, "size": 200},
            headers=h,
        )
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        if len(out) >= r.json()["total"]:
            return out
        page += 1


async def build_orders(session: AsyncSession) -> tuple[Store, Store, list[Product], list[set[int]]]:
    """Known baskets in a Shanghai store in the first week of April 2025, and orders that hold
    no basket of that run: outside the window, cancelled, closed, wholly refunded, in another
    store; a line refunded in full drops its product from the basket."""
    store = await make_store(session, name="人民广场店", timezone="Asia/Shanghai")
    other = await make_store(session, name="别的店", timezone="Asia/Shanghai")
    products = [
        await make_product(session, name=f"商品{i}", price_fen=100 + i, stores=[store, other])
        for i in range(8)
    ]
    by_id = {p.id: p for p in products}
    baskets = random_baskets(11, 60, [p.id for p in products])
    for basket in baskets:  # two seldom-bought products that go together: a shelf pair
        if products[4].id in basket:
            basket.add(products[6].id)
    expected: list[set[int]] = []
    for i, basket in enumerate(baskets):
        # from 00:30 on 1 April to 7 April, Shanghai time
        at = utc(2025, 3, 31, 16, 30 + i) if i < 20 else utc(2025, 4, 1 + i % 6, 6, i)
        await sale(session, store, [(by_id[p], 1 + i % 2) for p in sorted(basket)], paid_at=at)
        expected.append(basket)
    a, b, c = products[0], products[1], products[2]
    # Two lines of one product are one item of the basket.
    await sale(session, store, [(a, 1), (b, 1), (a, 2)], paid_at=utc(2025, 4, 3, 2))
    expected.append({a.id, b.id})
    # b refunded in full (c only in part): the customer kept a and c.
    kept = await sale(session, store, [(a, 1), (b, 1), (c, 2)], paid_at=utc(2025, 4, 4, 2))
    await refund(session, kept, b, 1, at=utc(2025, 4, 4, 3))
    await refund(session, kept, c, 1, at=utc(2025, 4, 4, 3))
    expected.append({a.id, c.id})
    # One unit of b taken off the bill before payment (of one): b is not in the basket.
    short = await sale(session, store, [(a, 1), (b, 1)], paid_at=utc(2025, 4, 5, 2))
    await session.execute(
        update(OrderLine)
        .where(OrderLine.order_id == short.id, OrderLine.product_id == b.id)
        .values(cancelled_qty=1)
    )
    expected.append({a.id})
    # None of these is a basket of the run.
    noise = [(a, 1), (b, 1), (c, 1)]
    await sale(session, store, noise, paid_at=utc(2025, 3, 31, 15, 59))  # 23:59 on 31 March
    await sale(session, store, noise, paid_at=utc(2025, 4, 7, 16, 0))  # 00:00 on 8 April
    await sale(
        session, store, noise, paid_at=None, status="cancelled", created_at=utc(2025, 4, 2, 1)
    )
    await sale(session, store, noise, paid_at=utc(2025, 4, 2, 2), status="closed")
    gone = await sale(session, store, noise, paid_at=utc(2025, 4, 2, 3))
    await session.execute(
        update(OrderLine).where(OrderLine.order_id == gone.id).values(refunded_qty=1)
    )
    await session.execute(update(Order).where(Order.id == gone.id).values(status="refunded"))
    await sale(session, other, noise, paid_at=utc(2025, 4, 2, 2))
    await session.flush()
    return store, other, products, expected


@pytest.mark.parametrize("max_len", [3])
async def test_a_run_over_orders_equals_mlxtend_on_the_same_baskets(
    client: httpx.AsyncClient, session: AsyncSession, jobs: Any, max_len: int
) -> None:
    store, _other, products, expected = await build_orders(session)
    h = await _headers(session)
    params = {"min_support": 0.05, "min_confidence": 0.2, "max_len": max_len}
    r = await _run(client, h, store_id=store.id, start="2025-04-01", end="2025-04-07", **params)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    r = await client.get(f"/api/v1/analytics/basket-runs/{run_id}", headers=h)
    run = r.json()
    assert run["status"] == "succeeded", run
    assert run["baskets"] == len(expected)
    job = (await client.get(f"/api/v1/jobs/{run['job_id']}", headers=h)).json()
    assert (job["status"], job["progress"], job["total"]) == ("succeeded", 100, 100)
    assert job["result"]["baskets"] == len(expected)
    assert (run["store_id"], run["store_name"], run["progress"]) == (store.id, "人民广场店", 100)
    sets, ref = reference(expected, min_support=0.05, min_confidence=0.2, max_len=max_len)
    rules = await _all_rules(client, h, run_id)
    got = {
        (
            tuple(p["product_id"] for p in x["antecedent"]),
            tuple(p["product_id"] for p in x["consequent"]),
        ): (x["support"], x["confidence"], x["lift"])
        for x in rules
    }
    assert got == ref  # both backends keep doubles to the last bit
    assert {len(a) + len(c) for a, c in got} == {2, 3}
    assert run["rules"] == len(ref)
    assert run["itemsets"] == len(sets)
    for x in rules:
        assert x["count"] == round(x["support"] * len(expected))
        names = {p["product_id"]: p["name"] for p in x["antecedent"] + x["consequent"]}
        assert all(name.startswith("商品") for name in names.values())
    audit = await session.scalar(
        select(AuditLog).where(
            AuditLog.action == "analytics.basket_run", AuditLog.entity_id == str(run_id)
        )
    )
    assert audit is not None

    # Filters: a product's rules, a floor on lift, triples only; the table's order is by lift.
    a = products[0].id
    r = await client.get(
        f"/api/v1/analytics/basket-runs/{run_id}/rules",
        params={"product_id": a, "min_lift": 1.0, "items": 3, "size": 200},
        headers=h,
    )
    assert r.status_code == 200, r.text
    want = {k for k, v in ref.items() if a in k[0] + k[1] and v[2] >= 1.0 and len(k[0] + k[1]) == 3}
    items = r.json()["items"]
    assert want
    assert {
        (
            tuple(p["product_id"] for p in x["antecedent"]),
            tuple(p["product_id"] for p in x["consequent"]),
        )
        for x in items
    } == want
    assert [x["lift"] for x in items] == sorted((x["lift"] for x in items), reverse=True)

    # Bought with a: pair rules a -> partner, the most confident first.
    r = await client.get(f"/api/v1/analytics/basket-runs/{run_id}/products/{a}", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    pairs = sorted(
        ((k[1][0], v) for k, v in ref.items() if k[0] == (a,) and len(k[1]) == 1),
        key=lambda kv: (-kv[1][1], -kv[1][2]),
    )
    assert [p["product"]["product_id"] for p in body["partners"]] == [p for p, _ in pairs][:10]
    assert body["support"] == sets[(a,)]

    # The run's frequent products, for pickers: the most frequent first, by part of a name.
    r = await client.get(
        f"/api/v1/analytics/basket-runs/{run_id}/products", params={"limit": 200}, headers=h
    )
    assert r.status_code == 200, r.text
    singles = {k[0]: v for k, v in sets.items() if len(k) == 1}
    assert {p["product_id"]: p["support"] for p in r.json()} == singles
    assert [p["count"] for p in r.json()] == sorted((p["count"] for p in r.json()), reverse=True)
    r = await client.get(
        f"/api/v1/analytics/basket-runs/{run_id}/products",
        params={"q": products[3].name},
        headers=h,
    )
    assert [p["product_id"] for p in r.json()] == [products[3].id]

    # The graph's edges are the run's pairs; suggestions name products of the run.
    r = await client.get(f"/api/v1/analytics/basket-runs/{run_id}/graph", headers=h)
    assert r.status_code == 200, r.text
    g = r.json()
    assert {tuple(sorted((e["source"], e["target"]))) for e in g["edges"]} == {
        tuple(sorted(k[0] + k[1])) for k in ref if len(k[0] + k[1]) == 2
    }
    assert {n["product_id"] for n in g["nodes"]} == {
        p for e in g["edges"] for p in (e["source"], e["target"])
    }
    r = await client.get(f"/api/v1/analytics/basket-runs/{run_id}/suggestions", headers=h)
    assert r.status_code == 200, r.text
    shelf = {
        frozenset(k[0] + k[1]) for k, v in ref.items() if len(k[0] + k[1]) == 2 and v[2] >= 1.5
    }
    bundles = {frozenset(k[0] + k[1]) for k, v in ref.items() if v[2] >= 1.2}
    assert shelf
    assert any(len(b) == 3 for b in bundles)
    found = r.json()
    assert {
        frozenset(p["product_id"] for p in s["products"]) for s in found if s["kind"] == "shelf"
    } == shelf
    assert len([s for s in found if s["kind"] == "bundle"]) == min(10, len(bundles))
    # the larger sets first
    assert len(next(s for s in found if s["kind"] == "bundle")["products"]) == 3
    for s in r.json():
        assert s["kind"] in {"shelf", "bundle"}
        key = tuple(sorted(p["product_id"] for p in s["products"]))
        assert key in sets
        if s["kind"] == "shelf":
            assert s["lift"] >= 1.5
            assert s["confidence"] >= 0.2


async def test_a_chain_run_equals_mlxtend_on_every_store_s_baskets(
    client: httpx.AsyncClient, session: AsyncSession, jobs: Any
) -> None:
    """A run for the chain (no store) mines the union of every store's baskets of the window,
    each store's window in its own zone: its rules equal mlxtend's on that union, and differ
    from the one store's."""
    store, other, products, expected = await build_orders(session)
    by_id = {p.id: p for p in products}
    a, b, c = products[0], products[1], products[2]
    # build_orders' order of a, b and c in the other store (10:00 on 2 April) is a basket now.
    union = [*expected, {a.id, b.id, c.id}]
    for i, basket in enumerate(random_baskets(12, 40, [p.id for p in reversed(products)])):
        at = utc(2025, 4, 1 + i % 7, 3, i)  # 11:xx in Shanghai, 1 to 7 April
        await sale(session, other, [(by_id[p], 1) for p in sorted(basket)], paid_at=at)
        union.append(basket)
    berlin = await make_store(session, name="Mitte", timezone="Europe/Berlin")
    # 23:30 on 7 April in Berlin (8 April in Shanghai): in the window.
    await sale(session, berlin, [(a, 1), (products[7], 1)], paid_at=utc(2025, 4, 7, 21, 30))
    union.append({a.id, products[7].id})
    # 23:30 on 31 March in Berlin (1 April in Shanghai): not in it.
    await sale(session, berlin, [(b, 1), (c, 1)], paid_at=utc(2025, 3, 31, 21, 30))
    await session.flush()

    h = await _headers(session)
    params = {"min_support": 0.05, "min_confidence": 0.2, "max_len": 3}
    r = await _run(client, h, start="2025-04-01", end="2025-04-07", **params)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    run = (await client.get(f"/api/v1/analytics/basket-runs/{run_id}", headers=h)).json()
    assert run["status"] == "succeeded", run
    assert (run["store_id"], run["baskets"]) == (None, len(union))
    sets, ref = reference(union, min_support=0.05, min_confidence=0.2, max_len=3)
    got = {
        (
            tuple(p["product_id"] for p in x["antecedent"]),
            tuple(p["product_id"] for p in x["consequent"]),
        ): (x["support"], x["confidence"], x["lift"])
        for x in await _all_rules(client, h, run_id)
    }
    assert got == ref
    assert (run["rules"], run["itemsets"]) == (len(ref), len(sets))
    _, store_only = reference(expected, min_support=0.05, min_confidence=0.2, max_len=3)
    assert got != store_only


async def test_an_empty_window_succeeds_with_nothing(
    client: httpx.AsyncClient, session: AsyncSession, jobs: Any
) -> None:
    store = await make_store(session)
    h = await _headers(session)
    r = await _run(client, h, store_id=store.id, start="2020-01-01", end="2020-01-31")
    assert r.status_code == 202, r.text
    run = (await client.get(f"/api/v1/analytics/basket-runs/{r.json()['id']}", headers=h)).json()
    assert (run["status"], run["baskets"], run["rules"]) == ("succeeded", 0, 0)
    rules = await _all_rules(client, h, run["id"])
    assert rules == []
    g = await client.get(f"/api/v1/analytics/basket-runs/{run['id']}/graph", headers=h)
    assert g.json() == {"nodes": [], "edges": []}
    # Reading never recomputes: orders paid in the window since are not in the run.
    cola = await make_product(session, name="可乐", stores=[store])
    chips = await make_product(session, name="薯片", stores=[store])
    for _ in range(3):
        await sale(session, store, [(cola, 1), (chips, 1)], paid_at=utc(2020, 1, 10, 4))
    again = await client.get(f"/api/v1/analytics/basket-runs/{run['id']}", headers=h)
    assert (again.json()["baskets"], again.json()["rules"]) == (0, 0)
    assert await _all_rules(client, h, run["id"]) == []
    # A new run sees them.
    r = await _run(client, h, store_id=store.id, start="2020-01-01", end="2020-01-31")
    fresh = (await client.get(f"/api/v1/analytics/basket-runs/{r.json()['id']}", headers=h)).json()
    assert (fresh["baskets"], fresh["rules"]) == (3, 2)


async def test_nightly_queues_the_chain_and_every_open_store(session: AsyncSession) -> None:
    from selfmart.analytics import baskets
    from selfmart.iam.actor import job_actor
    from selfmart.kit.time import utcnow
    from selfmart.models import BasketRun, JobRun

    open_store = await make_store(session)
    closed = await make_store(session, status="closed")
    old = BasketRun(
        store_id=open_store.id, first_day=date(2025, 1, 1), last_day=date(2025, 1, 30),
        min_support=0.01, min_confidence=0.1, min_lift=0, max_len=2, trigger="nightly",
        status="succeeded", baskets=0, products=0, itemsets=0, rules=0, truncated=False,
        created_at=utcnow() - timedelta(days=91),
    )  # fmt: skip
    session.add(old)
    await session.flush()
    ids = await baskets.nightly(session, actor=job_actor("test"))
    runs = (await session.scalars(select(BasketRun).where(BasketRun.id.in_(ids)))).all()
    stores = {r.store_id for r in runs}
    assert None in stores
    assert open_store.id in stores
    assert closed.id not in stores
    today = utcnow().date()
    for r in runs:
        assert (r.first_day, r.last_day) == (today - timedelta(days=30), today - timedelta(days=1))
        assert (r.trigger, r.status) == ("nightly", "queued")
        job = await session.get(JobRun, r.job_id)
        assert job is not None
        assert (job.kind, job.params) == ("analytics.basket_rules", {"run_id": r.id})
    # the 91-day-old nightly run is gone (SQLite may give its id to a new run: look by window)
    left = await session.scalars(select(BasketRun.first_day).where(BasketRun.store_id.is_not(None)))
    assert date(2025, 1, 1) not in set(left.all())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "2025-04-07", "end": "2025-04-01"}, "end"),
        ({"start": "2023-01-01", "end": "2025-04-01"}, "end"),
        ({"start": "2025-04-01", "end": "2025-04-07", "min_support": 0}, "min_support"),
        ({"start": "2025-04-01", "end": "2025-04-07", "min_support": 1.5}, "min_support"),
        ({"start": "2025-04-01", "end": "2025-04-07", "min_confidence": -0.1}, "min_confidence"),
        ({"start": "2025-04-01", "end": "2025-04-07", "min_confidence": 2}, "min_confidence"),
        ({"start": "2025-04-01", "end": "2025-04-07", "min_lift": -1}, "min_lift"),
        ({"start": "2025-04-01", "end": "2025-04-07", "max_len": 1}, "max_len"),
        ({"start": "2025-04-01", "end": "2025-04-07", "max_len": 9}, "max_len"),
        ({"start": "2025-04-01"}, "end"),
    ],
)
async def test_bad_windows_and_thresholds_are_refused(
    client: httpx.AsyncClient, session: AsyncSession, body: dict[str, Any], field: str
) -> None:
    h = await _headers(session)
    r = await _run(client, h, **body)
    assert r.status_code == 422, r.text
    assert field in {d["field"].split(".")[-1] for d in r.json()["details"]}, r.json()
    listed = await client.get("/api/v1/analytics/basket-runs", headers=h)
    assert listed.json()["total"] == 0  # nothing was recorded


async def test_bad_reading_filters_are_refused(
    client: httpx.AsyncClient, session: AsyncSession, jobs: Any
) -> None:
    store = await make_store(session)
    h = await _headers(session)
    r = await _run(client, h, store_id=store.id, start="2025-04-01", end="2025-04-02")
    run_id = r.json()["id"]
    url = f"/api/v1/analytics/basket-runs/{run_id}/rules"
    for params in ({"min_support": 2}, {"min_confidence": -1}, {"min_lift": -3}, {"items": 9}):
        r = await client.get(url, params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
    r = await client.get("/api/v1/analytics/basket-runs/999999/rules", headers=h)
    assert r.status_code == 404


async def test_a_store_s_people_see_only_their_stores_runs(
    client: httpx.AsyncClient, session: AsyncSession, jobs: Any
) -> None:
    store, other, products, _ = await build_orders(session)
    boss = await _headers(session)
    body = {"start": "2025-04-01", "end": "2025-04-07", "min_support": 0.05}
    chain_run = (await _run(client, boss, **body)).json()["id"]
    other_run = (await _run(client, boss, store_id=other.id, **body)).json()["id"]
    mine = (await _run(client, boss, store_id=store.id, **body)).json()["id"]
    hidden = await make_product(session, name="别店商品", stores=[other])

    h = await _headers(session, role="admin", stores=[store])
    for run_id in (chain_run, other_run):
        for tail in (
            "",
            "/rules",
            "/graph",
            "/suggestions",
            "/products",
            f"/products/{products[0].id}",
        ):
            r = await client.get(f"/api/v1/analytics/basket-runs/{run_id}{tail}", headers=h)
            assert r.status_code == 404, (run_id, tail, r.text)
    r = await client.get("/api/v1/analytics/basket-runs", headers=h)
    assert [x["id"] for x in r.json()["items"]] == [mine]
    r = await client.get("/api/v1/analytics/basket-runs", params={"store_id": other.id}, headers=h)
    assert r.status_code == 404
    r = await client.get(f"/api/v1/analytics/basket-runs/{mine}/products/{hidden.id}", headers=h)
    assert r.status_code == 404
    r = await client.get(
        f"/api/v1/analytics/basket-runs/{mine}/rules", params={"product_id": hidden.id}, headers=h
    )
    assert r.status_code == 404
    # Starting: not another store's, and not the whole chain.
    r = await _run(client, h, store_id=other.id, **body)
    assert r.status_code == 404
    r = await _run(client, h, **body)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "store_id"
    r = await _run(client, h, store_id=store.id, **body)
    assert r.status_code == 202, r.text
    # A reader without analytics:run may read but not start.
    cashier = await _headers(session, role="cashier", stores=[store])
    r = await _run(client, cashier, store_id=store.id, **body)
    assert r.status_code == 403
