"""The inventory API: stock per store, the ledger, charts, adjustments, bulk, alerts."""

from __future__ import annotations

import io
from datetime import timedelta

import httpx
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.inventory import service as inventory
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, ProductBarcode, Store

from ..builders import auth_headers, make_store, make_user
from .builders import CLERK, list_in_store, make_product, stock


async def _admin(session: AsyncSession, *stores: Store) -> dict[str, str]:
    user = await make_user(session, role="admin", stores=list(stores))
    return await auth_headers(session, user)


async def test_stock_list_shows_state_filters_and_paginates(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    ok = await make_product(session, name="可口可乐 330ml", low_stock_threshold=3)
    low = await make_product(session, name="雪碧 500ml", low_stock_threshold=5)
    out = await make_product(session, name="农夫山泉", low_stock_threshold=2)
    listed_only = await make_product(session, name="红牛")
    session.add(ProductBarcode(product_id=ok.id, code="6901234567892", kind="ean13"))
    await stock(session, store.id, ok.id, 10)
    await stock(session, store.id, low.id, 4)
    await stock(session, store.id, out.id, 1)
    await inventory.adjust(
        session, store_id=store.id, product_id=out.id, actor=CLERK, reason="gone", set_to=0
    )
    await list_in_store(session, store.id, listed_only.id)
    headers = await _admin(session, store)

    r = await client.get(f"/api/v1/stores/{store.id}/stock", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 4
    states = {
        row["product_name"]: (row["quantity"], row["threshold"], row["state"])
        for row in body["items"]
    }
    assert states == {
        "可口可乐 330ml": (10, 3, "ok"),
        "雪碧 500ml": (4, 5, "low"),
        "农夫山泉": (0, 2, "out"),
        "红牛": (0, 0, "out"),
    }
    r = await client.get(f"/api/v1/stores/{store.id}/stock?state=low", headers=headers)
    assert [row["product_id"] for row in r.json()["items"]] == [low.id]
    r = await client.get(f"/api/v1/stores/{store.id}/stock?q=6901234567892", headers=headers)
    assert [row["product_id"] for row in r.json()["items"]] == [ok.id]
    r = await client.get(
        f"/api/v1/stores/{store.id}/stock?sort=-quantity&size=2&page=1", headers=headers
    )
    page = r.json()
    assert (page["total"], page["size"], [x["quantity"] for x in page["items"]]) == (4, 2, [10, 4])
    r = await client.get(f"/api/v1/stores/{store.id}/stock/{low.id}", headers=headers)
    assert (r.json()["quantity"], r.json()["state"]) == (4, "low")
    r = await client.get(f"/api/v1/stores/{store.id}/stock?state=bad", headers=headers)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "query.state"


async def test_another_store_is_a_404_and_no_permission_a_403(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    mine, theirs = await make_store(session), await make_store(session)
    p = await make_product(session)
    await stock(session, theirs.id, p.id, 5)
    headers = await _admin(session, mine)
    for path in (
        f"/api/v1/stores/{theirs.id}/stock",
        f"/api/v1/stores/{theirs.id}/stock/movements",
        f"/api/v1/stores/{theirs.id}/stock/{p.id}/series",
        f"/api/v1/stores/{theirs.id}/stock/export",
    ):
        r = await client.get(path, headers=headers)
        assert r.status_code == 404, path
    r = await client.post(
        f"/api/v1/stores/{theirs.id}/stock/{p.id}/adjust",
        json={"delta": 1, "reason": "x"},
        headers=headers,
    )
    assert r.status_code == 404
    cashier = await make_user(session, role="cashier", stores=[mine])
    r = await client.get(
        f"/api/v1/stores/{mine.id}/stock", headers=await auth_headers(session, cashier)
    )
    assert r.status_code == 403


async def test_stock_export_is_a_spreadsheet_of_the_filtered_rows(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    a = await make_product(session, name="奥利奥", low_stock_threshold=10)
    b = await make_product(session, name="乐事薯片")
    await stock(session, store.id, a.id, 3)
    await stock(session, store.id, b.id, 30)
    headers = await _admin(session, store)
    r = await client.get(f"/api/v1/stores/{store.id}/stock/export?state=low", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(r.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:2] == ("商品ID", "商品名称")
    assert [(row[1], row[6], row[8]) for row in rows[1:]] == [("奥利奥", 3, "库存低")]


async def test_ledger_history_filters_exports_and_charts(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session, allow_negative_stock=False)
    p = await make_product(session, name="康师傅红烧牛肉面")
    other = await make_product(session)
    await stock(session, store.id, p.id, 20)
    await stock(session, store.id, other.id, 5)
    for order_id in (1, 2):
        await inventory.deduct_for_sale(
            session,
            store_id=store.id,
            lines=[(p.id, 3)],
            document=("order", order_id),
            actor=CLERK,
            allow_negative=False,
        )
    headers = await _admin(session, store)
    base = f"/api/v1/stores/{store.id}/stock"

    r = await client.get(f"{base}/movements?product_id={p.id}", headers=headers)
    body = r.json()
    assert body["total"] == 3
    assert [(m["kind"], m["quantity"], m["balance_after"]) for m in body["items"]] == [
        ("sale", -3, 14),
        ("sale", -3, 17),
        ("purchase_receipt", 20, 20),
    ]
    assert body["items"][0]["product_name"] == "康师傅红烧牛肉面"
    r = await client.get(f"{base}/movements?kind=purchase_receipt", headers=headers)
    assert {m["product_id"] for m in r.json()["items"]} == {p.id, other.id}
    r = await client.get(f"{base}/movements?document_type=order&document_id=2", headers=headers)
    assert [m["balance_after"] for m in r.json()["items"]] == [14]
    future = (utcnow() + timedelta(hours=1)).isoformat()
    r = await client.get(f"{base}/movements", params={"since": future}, headers=headers)
    assert r.json()["total"] == 0

    r = await client.get(f"{base}/movements/export?product_id={p.id}", headers=headers)
    ws = load_workbook(io.BytesIO(r.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][2:5] == ("商品名称", "规格", "条码")
    assert [(row[5], row[6], row[7]) for row in rows[1:]] == [
        ("销售出库", -3, 14),
        ("销售出库", -3, 17),
        ("进货入库", 20, 20),
    ]

    since = (utcnow() - timedelta(days=1)).isoformat()
    r = await client.get(
        f"{base}/{p.id}/series", params={"since": since, "bucket": "none"}, headers=headers
    )
    series = r.json()
    assert series["opening_balance"] == 0
    assert [(pt["balance"], pt["change"]) for pt in series["points"]] == [
        (20, 20),
        (17, -3),
        (14, -3),
    ]
    r = await client.get(f"{base}/{p.id}/series", params={"since": since}, headers=headers)
    points = r.json()["points"]
    assert points[-1]["balance"] == 14
    assert sum(pt["change"] for pt in points) == 14
    r = await client.get(
        f"{base}/{p.id}/series",
        params={"since": (utcnow() - timedelta(days=400)).isoformat()},
        headers=headers,
    )
    assert r.status_code == 422


async def test_chart_totals_sum_movements_not_net_changes(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    # +30 then -26 within the hour: 30 came in and 26 went out, not "+4 in, 0 out".
    store = await make_store(session)
    p = await make_product(session)
    await stock(session, store.id, p.id, 30)
    await inventory.adjust(
        session, store_id=store.id, product_id=p.id, actor=CLERK, reason="damaged", delta=-26
    )
    headers = await _admin(session, store)
    since = (utcnow() - timedelta(days=1)).isoformat()
    for bucket in ("hour", "day", "none"):
        r = await client.get(
            f"/api/v1/stores/{store.id}/stock/{p.id}/series",
            params={"since": since, "bucket": bucket},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["in_total"], body["out_total"]) == (30, 26), bucket
        assert sum(pt["in_qty"] for pt in body["points"]) == 30
        assert sum(pt["out_qty"] for pt in body["points"]) == 26
        assert body["points"][-1]["balance"] == 4
    r = await client.get(
        f"/api/v1/stores/{store.id}/stock/{p.id}/series",
        params={"since": since, "bucket": "day"},
        headers=headers,
    )
    [day] = [pt for pt in r.json()["points"] if pt["in_qty"]]
    assert (day["change"], day["in_qty"], day["out_qty"]) == (4, 30, 26)


async def test_adjust_needs_a_reason_and_write_off_cannot_exceed_stock(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    p = await make_product(session)
    await stock(session, store.id, p.id, 5)
    headers = await _admin(session, store)
    url = f"/api/v1/stores/{store.id}/stock/{p.id}"
    r = await client.post(f"{url}/adjust", json={"delta": 2}, headers=headers)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.reason"
    r = await client.post(f"{url}/adjust", json={"delta": 1.5, "reason": "x"}, headers=headers)
    assert r.status_code == 422
    r = await client.post(f"{url}/adjust", json={"set_to": 9, "reason": "recount"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "store_id": store.id,
        "product_id": p.id,
        "before": 5,
        "after": 9,
        "changed": True,
    }
    r = await client.post(
        f"{url}/write-off", json={"quantity": 10, "reason": "damaged"}, headers=headers
    )
    assert r.status_code == 409
    assert r.json()["error"] == "insufficient_stock"
    r = await client.post(
        f"{url}/write-off", json={"quantity": 2, "reason": "damaged"}, headers=headers
    )
    assert r.json()["after"] == 7
    r = await client.post(
        f"/api/v1/stores/{store.id}/stock/999999/adjust",
        json={"delta": 1, "reason": "x"},
        headers=headers,
    )
    assert r.status_code == 404


async def test_direct_receipt_books_purchase_receipts(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    a, b = await make_product(session), await make_product(session)
    headers = await _admin(session, store)
    r = await client.post(
        f"/api/v1/stores/{store.id}/stock/receipts",
        json={"lines": [{"product_id": a.id, "quantity": 6}, {"product_id": b.id, "quantity": 2}]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["document_type"] == "receipt"
    assert [(ln["product_id"], ln["after"]) for ln in body["lines"]] == [(a.id, 6), (b.id, 2)]
    r = await client.post(
        f"/api/v1/stores/{store.id}/stock/receipts",
        json={"lines": [{"product_id": a.id, "quantity": -1}]},
        headers=headers,
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.lines.0.quantity"
    assert await inventory.balances(session, store.id, [a.id]) == {a.id: 6}


async def test_bulk_preview_changes_nothing_and_apply_audits_each_product(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    ps = [await make_product(session, name=f"P{i}") for i in range(3)]
    await stock(session, store.id, ps[0].id, 4)
    await stock(session, store.id, ps[1].id, 10)
    headers = await _admin(session, store)
    body = {
        "store_id": store.id,
        "product_ids": [p.id for p in ps],
        "mode": "set",
        "value": 10,
        "reason": "opening count",
    }
    r = await client.post("/api/v1/stock/bulk/preview", json=body, headers=headers)
    assert r.status_code == 200, r.text
    preview = r.json()
    assert (preview["applied"], preview["changed"]) == (False, 2)
    assert [(ln["before"], ln["after"], ln["change"]) for ln in preview["lines"]] == [
        (4, 10, 6),
        (10, 10, 0),
        (0, 10, 10),
    ]
    assert await inventory.balances(session, store.id, [ps[0].id]) == {ps[0].id: 4}

    r = await client.post("/api/v1/stock/bulk/apply", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["applied"] is True
    assert await inventory.balances(session, store.id, [p.id for p in ps]) == {p.id: 10 for p in ps}
    audited = await session.scalar(
        select(func.count()).where(
            AuditLog.action == "stock.bulk_adjust", AuditLog.store_id == store.id
        )
    )
    assert audited == 2

    r = await client.post(
        "/api/v1/stock/bulk/apply",
        json={**body, "mode": "adjust", "value": -11},
        headers=headers,
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["reason"] == "below_zero"
    r = await client.post("/api/v1/stock/bulk/apply", json={**body, "reason": ""}, headers=headers)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "reason"


async def test_alerts_and_discrepancies_are_listed_and_resolved(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, elsewhere = await make_store(session), await make_store(session)
    p = await make_product(session, low_stock_threshold=3)
    for s in (store, elsewhere):
        await stock(session, s.id, p.id, 4)
        await inventory.deduct_for_sale(
            session,
            store_id=s.id,
            lines=[(p.id, 6)],
            document=("order", 5),
            actor=CLERK,
            allow_negative=True,
        )
    headers = await _admin(session, store)
    r = await client.get("/api/v1/stock-alerts?status=open", headers=headers)
    items = r.json()["items"]
    assert [(a["store_id"], a["product_id"], a["kind"]) for a in items] == [
        (store.id, p.id, "low_stock")
    ]
    r = await client.post(
        f"/api/v1/stock-alerts/{items[0]['id']}/resolve", json={"note": "ordered"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    r = await client.post(
        f"/api/v1/stock-alerts/{items[0]['id']}/resolve", json={}, headers=headers
    )
    assert r.status_code == 409
    assert r.json()["error"] == "illegal_transition"

    r = await client.get("/api/v1/stock-discrepancies", headers=headers)
    found = r.json()["items"]
    assert [(d["store_id"], d["short_by"], d["balance_after"]) for d in found] == [
        (store.id, 2, -2)
    ]
    r = await client.post(
        f"/api/v1/stock-discrepancies/{found[0]['id']}/resolve", json={}, headers=headers
    )
    assert r.status_code == 422
    r = await client.post(
        f"/api/v1/stock-discrepancies/{found[0]['id']}/resolve",
        json={"note": "two bottles taken unscanned; stocktake booked"},
        headers=headers,
    )
    assert r.json()["status"] == "resolved"
