"""Reorder suggestions, transfers between stores and stocktakes, through the API."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.inventory import service as inventory
from selfmart.inventory.checks import find_mismatches
from selfmart.kit.time import utcnow
from selfmart.models import (
    Category,
    ProductBarcode,
    StockMovement,
    Store,
    Supplier,
    SupplierProduct,
)

from ..builders import auth_headers, make_store, make_user
from ..inventory.builders import CLERK, list_in_store, make_product, stock


async def _admin(session: AsyncSession, *stores: Store) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="admin", stores=list(stores)))


async def _sell(
    session: AsyncSession, store_id: int, product_id: int, qty: int, **kw: object
) -> None:
    result = await inventory.deduct_for_sale(
        session,
        store_id=store_id,
        lines=[(product_id, qty)],
        document=("order", 1),
        actor=CLERK,
        allow_negative=True,
        **kw,  # type: ignore[arg-type]
    )
    assert result.ok


async def test_reorder_suggestions_from_velocity_lead_time_and_safety_stock(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    fast = await make_product(session, name="矿泉水")
    slow = await make_product(session, name="口香糖")
    idle = await make_product(session, name="电池", low_stock_threshold=4)
    supplier = Supplier(code="SUP-R", name="华东饮料")
    cheap = Supplier(code="SUP-R2", name="便宜批发")
    session.add_all([supplier, cheap])
    await session.flush()
    session.add_all(
        [
            SupplierProduct(
                supplier_id=supplier.id,
                product_id=fast.id,
                cost_fen=100,
                lead_time_days=2,
                min_order_qty=12,
                is_preferred=True,
            ),
            SupplierProduct(
                supplier_id=cheap.id, product_id=fast.id, cost_fen=90, lead_time_days=5
            ),
            SupplierProduct(
                supplier_id=cheap.id, product_id=slow.id, cost_fen=50, lead_time_days=3
            ),
            SupplierProduct(
                supplier_id=cheap.id, product_id=idle.id, cost_fen=500, lead_time_days=3
            ),
        ]
    )
    await stock(session, store.id, fast.id, 100)
    await stock(session, store.id, slow.id, 100)
    await list_in_store(session, store.id, idle.id)
    # 70 fast sold in the last 7 days -> 10/day; 1 slow; sales before the window don't count
    await _sell(session, store.id, fast.id, 50, occurred_at=utcnow() - timedelta(days=30))
    await _sell(session, store.id, fast.id, 40)
    await _sell(session, store.id, fast.id, 30)
    await _sell(session, store.id, slow.id, 7)
    headers = await _admin(session, store)
    r = await client.get(
        f"/api/v1/stores/{store.id}/reorder-suggestions",
        params={"window_days": 7, "safety_days": 2, "cover_days": 7},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    got = {s["product_id"]: s for s in r.json()}
    # fast: on hand 100-120 = -20; v=10; safety 20; ROP = 20+20 = 40; target 10*(2+7)+20 = 110
    # -> 130, rounded up to a multiple of 12 -> 132, from the preferred supplier
    f = got[fast.id]
    assert (f["on_hand"], f["daily_velocity"], f["safety_stock"], f["reorder_point"]) == (
        -20,
        10.0,
        20,
        40,
    )
    assert (f["supplier_id"], f["suggested_qty"], f["amount_fen"]) == (supplier.id, 132, 13200)
    # slow: 93 on hand, far above its reorder point
    assert slow.id not in got
    # idle: nothing sold, but at its threshold (0 <= 4): ordered up to threshold + 1
    assert (got[idle.id]["suggested_qty"], got[idle.id]["supplier_id"]) == (5, cheap.id)

    r = await client.post(
        f"/api/v1/stores/{store.id}/reorder-suggestions/purchase-orders",
        json={"window_days": 7, "safety_days": 2, "quantities": {str(idle.id): 8}},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    orders = {po["supplier_id"]: po for po in r.json()}
    assert {k: po["status"] for k, po in orders.items()} == {
        supplier.id: "draft",
        cheap.id: "draft",
    }
    assert [(ln["product_id"], ln["quantity_ordered"]) for ln in orders[cheap.id]["lines"]] == [
        (idle.id, 8)
    ]
    # now on order: no further suggestion for them
    r = await client.get(
        f"/api/v1/stores/{store.id}/reorder-suggestions",
        params={"window_days": 7, "safety_days": 2},
        headers=headers,
    )
    assert r.json() == []
    r = await client.get(
        f"/api/v1/stores/{store.id}/reorder-suggestions", params={"window_days": 0}, headers=headers
    )
    assert r.status_code == 422


async def test_reorder_counts_shrinkage_in_the_window_as_outflow(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Same sales in three stores; one also lost stock in the window (a stocktake loss and a
    damaged write-off, less a stocktake gain), one lost the same units before it."""
    control, shrank, lost_before = [await make_store(session) for _ in range(3)]
    product = await make_product(session, name="酸奶")
    supplier = Supplier(code="SUP-S", name="乳品批发")
    session.add(supplier)
    await session.flush()
    session.add(
        SupplierProduct(
            supplier_id=supplier.id, product_id=product.id, cost_fen=300, lead_time_days=2
        )
    )
    now = utcnow()

    async def book(store: Store, delta: int, kind: str, at: datetime) -> None:
        await inventory.book(
            session,
            store_id=store.id,
            changes=[inventory.Change(product.id, delta, kind, reason="盘点")],
            document=None,
            actor=CLERK,
            refuse_negative=True,
            occurred_at=at,
        )

    await book(control, 40, "purchase_receipt", now - timedelta(days=40))
    # 54 in, then 9 lost and 2 found at a stocktake 2 days ago and 7 damaged: 14 shrunk
    await book(shrank, 54, "purchase_receipt", now - timedelta(days=40))
    await book(shrank, -9, "stocktake_loss", now - timedelta(days=2))
    await book(shrank, 2, "stocktake_gain", now - timedelta(days=2))
    await inventory.write_off(
        session, store_id=shrank.id, product_id=product.id, quantity=7, reason="破损", actor=CLERK
    )
    # the same 14 lost 30 days ago, outside the 7-day window
    await book(lost_before, 54, "purchase_receipt", now - timedelta(days=40))
    await book(lost_before, -14, "stocktake_loss", now - timedelta(days=30))
    for store in (control, shrank, lost_before):
        await _sell(session, store.id, product.id, 35)  # 5 a day over 7 days; 5 left
    headers = await _admin(session, control, shrank, lost_before)

    async def suggestion(store: Store) -> dict[str, object]:
        r = await client.get(
            f"/api/v1/stores/{store.id}/reorder-suggestions",
            params={"window_days": 7, "safety_days": 2, "cover_days": 7},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        [row] = r.json()
        keys = (
            "on_hand",
            "sold_in_window",
            "shrunk_in_window",
            "daily_velocity",
            "daily_outflow",
            "safety_stock",
            "reorder_point",
            "suggested_qty",
            "turnover_days",
        )
        return {k: row[k] for k in keys}

    # control: outflow 35/7 = 5; safety ceil(5*2) = 10; ROP 5*2 + 10 = 20 >= 5 on hand;
    # up to 5*(2+7) + 10 = 55 -> 50; turnover (40 + 5) / 2 / 5 a day = 4.5 days
    expected = {
        "on_hand": 5,
        "sold_in_window": 35,
        "shrunk_in_window": 0,
        "daily_velocity": 5.0,
        "daily_outflow": 5.0,
        "safety_stock": 10,
        "reorder_point": 20,
        "suggested_qty": 50,
        "turnover_days": "4.5",
    }
    assert await suggestion(control) == expected
    # shrank: outflow (35 + 14)/7 = 7; safety 14; ROP 7*2 + 14 = 28; up to 7*9 + 14 = 77 -> 72;
    # turnover (54 + 5) / 2 / 5 a day = 5.9 days
    assert await suggestion(shrank) == {
        **expected,
        "shrunk_in_window": 14,
        "daily_outflow": 7.0,
        "safety_stock": 14,
        "reorder_point": 28,
        "suggested_qty": 72,
        "turnover_days": "5.9",
    }
    # a loss before the window changes nothing
    assert await suggestion(lost_before) == expected


async def test_transfer_ships_out_shows_in_transit_and_receives_in(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    src, dst = await make_store(session), await make_store(session)
    a, b = await make_product(session), await make_product(session)
    await stock(session, src.id, a.id, 10)
    await stock(session, src.id, b.id, 3)
    headers = await _admin(session, src, dst)
    r = await client.post(
        "/api/v1/transfers",
        json={
            "from_store_id": src.id,
            "to_store_id": dst.id,
            "lines": [{"product_id": a.id, "quantity": 6}, {"product_id": b.id, "quantity": 5}],
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    r = await client.post(f"/api/v1/transfers/{tid}/ship", headers=headers)
    assert r.status_code == 409
    assert r.json()["error"] == "insufficient_stock"
    assert await inventory.balances(session, src.id, [a.id, b.id]) == {a.id: 10, b.id: 3}

    await stock(session, src.id, b.id, 2)
    r = await client.post(f"/api/v1/transfers/{tid}/ship", headers=headers)
    assert r.json()["status"] == "in_transit"
    assert await inventory.balances(session, src.id, [a.id, b.id]) == {a.id: 4, b.id: 0}
    r = await client.get(f"/api/v1/transfers?status=in_transit&store_id={dst.id}", headers=headers)
    assert [t["id"] for t in r.json()["items"]] == [tid]

    r = await client.post(
        f"/api/v1/transfers/{tid}/receive",
        json={"lines": [{"product_id": b.id, "quantity": 4}]},  # one lost on the way
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert [(ln["quantity"], ln["quantity_received"]) for ln in r.json()["lines"]] == [
        (6, 6),
        (5, 4),
    ]
    assert await inventory.balances(session, dst.id, [a.id, b.id]) == {a.id: 6, b.id: 4}
    kinds = (
        await session.scalars(
            select(StockMovement.kind).where(
                StockMovement.document_type == "transfer", StockMovement.document_id == str(tid)
            )
        )
    ).all()
    assert sorted(kinds) == ["transfer_in", "transfer_in", "transfer_out", "transfer_out"]
    r = await client.post(f"/api/v1/transfers/{tid}/cancel", headers=headers)
    assert r.status_code == 409
    assert "from received to cancelled" in r.json()["message"]
    assert await find_mismatches(session) == []

    # someone who runs only the source store cannot book the receipt at the target
    r = await client.post(
        "/api/v1/transfers",
        json={
            "from_store_id": src.id,
            "to_store_id": dst.id,
            "lines": [{"product_id": a.id, "quantity": 1}],
        },
        headers=headers,
    )
    t2 = r.json()["id"]
    await client.post(f"/api/v1/transfers/{t2}/ship", headers=headers)
    src_only = await _admin(session, src)
    r = await client.post(f"/api/v1/transfers/{t2}/receive", json={}, headers=src_only)
    assert r.status_code == 404


async def test_stocktake_counts_against_the_book_at_count_time_and_posts_variances(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    drinks = Category(name="饮料", depth=1, path="/")
    snacks = Category(name="零食", depth=1, path="/")
    session.add_all([drinks, snacks])
    await session.flush()
    drinks.path, snacks.path = f"/{drinks.id}/", f"/{snacks.id}/"
    cola_cat = Category(name="碳酸饮料", parent_id=drinks.id, depth=2, path="/")
    session.add(cola_cat)
    await session.flush()
    cola_cat.path = f"{drinks.path}{cola_cat.id}/"
    cola = await make_product(session, name="可乐", category_id=cola_cat.id, cost_fen=200)
    water = await make_product(session, name="水", category_id=drinks.id, cost_fen=100)
    chips = await make_product(session, name="薯片", category_id=snacks.id)
    session.add(ProductBarcode(product_id=water.id, code="6921168509256", kind="ean13"))
    for p, q in ((cola, 20), (water, 10), (chips, 5)):
        await stock(session, store.id, p.id, q)
    headers = await _admin(session, store)
    r = await client.post(
        "/api/v1/stocktakes",
        json={"store_id": store.id, "category_ids": [drinks.id]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    take = r.json()
    assert sorted(ln["product_name"] for ln in take["lines"]) == ["可乐", "水"]  # sub-category in
    url = f"/api/v1/stocktakes/{take['id']}"

    await _sell(session, store.id, cola.id, 2)  # sold before the count: book 18
    r = await client.post(
        f"{url}/counts",
        json={
            "counts": [
                {"product_id": cola.id, "counted_qty": 17},
                {"barcode": "6921168509256", "counted_qty": 12},
            ]
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    await _sell(session, store.id, cola.id, 3)  # sold after the count: not a loss
    report = (await client.get(url, headers=headers)).json()
    lines = {ln["product_id"]: ln for ln in report["lines"]}
    assert (
        lines[cola.id]["expected_qty"],
        lines[cola.id]["book_qty_at_count"],
        lines[cola.id]["variance"],
    ) == (20, 18, -1)
    assert (lines[water.id]["variance"], lines[water.id]["variance_cost_fen"]) == (2, 200)
    assert report["summary"] == {
        "lines": 2,
        "counted": 2,
        "gains": 1,
        "losses": 1,
        "gain_qty": 2,
        "loss_qty": 1,
        "net_cost_fen": 0,
    }
    r = await client.post(
        f"{url}/counts", json={"counts": [{"barcode": "000", "counted_qty": 1}]}, headers=headers
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["reason"] == "unknown_barcode"
    r = await client.post(
        f"{url}/counts",
        json={"counts": [{"product_id": cola.id, "counted_qty": -1}]},
        headers=headers,
    )
    assert r.status_code == 422

    r = await client.post(f"{url}/post", json={}, headers=headers)
    assert r.json()["status"] == "posted"
    # 20 - 2 - 3 sold = 15, then the loss of 1; water 10 + 2
    assert await inventory.balances(session, store.id, [cola.id, water.id, chips.id]) == {
        cola.id: 14,
        water.id: 12,
        chips.id: 5,
    }
    moves = (
        await session.scalars(
            select(StockMovement).where(StockMovement.document_type == "stocktake")
        )
    ).all()
    assert sorted((m.kind, m.quantity) for m in moves) == [
        ("stocktake_gain", 2),
        ("stocktake_loss", -1),
    ]
    r = await client.post(f"{url}/post", json={}, headers=headers)
    assert r.status_code == 409
    assert "from posted to posted" in r.json()["message"]
    r = await client.post(
        f"{url}/counts",
        json={"counts": [{"product_id": cola.id, "counted_qty": 1}]},
        headers=headers,
    )
    assert r.status_code == 409
    assert await find_mismatches(session, store.id) == []


async def test_stocktake_can_book_uncounted_products_as_zero(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    a, b = await make_product(session), await make_product(session)
    await stock(session, store.id, a.id, 4)
    await stock(session, store.id, b.id, 6)
    headers = await _admin(session, store)
    take = (
        await client.post("/api/v1/stocktakes", json={"store_id": store.id}, headers=headers)
    ).json()
    await client.post(
        f"/api/v1/stocktakes/{take['id']}/counts",
        json={"counts": [{"product_id": a.id, "counted_qty": 4}]},
        headers=headers,
    )
    r = await client.post(
        f"/api/v1/stocktakes/{take['id']}/post", json={"uncounted": "zero"}, headers=headers
    )
    assert r.json()["summary"]["loss_qty"] == 6
    assert await inventory.balances(session, store.id, [a.id, b.id]) == {a.id: 4, b.id: 0}
