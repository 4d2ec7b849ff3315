"""Suppliers and purchase orders through the API: the state machine, receiving into the ledger."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.inventory import service as inventory
from selfmart.models import StockBatch, StockMovement, Store

from ..builders import auth_headers, make_store, make_user
from ..inventory.builders import make_product


async def _admin(session: AsyncSession, *stores: Store) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="admin", stores=list(stores)))


async def _supplier(client: httpx.AsyncClient, headers: dict[str, str], code: str) -> int:
    r = await client.post(
        "/api/v1/suppliers",
        json={
            "code": code,
            "name": f"供应商 {code}",
            "contact_name": "王经理",
            "phone": "13800138000",
            "payment_terms": "月结30天",
            "payment_days": 30,
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_supplier_crud_and_products_supplied(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    headers = await _admin(session)
    sid = await _supplier(client, headers, "SUP-A")
    r = await client.post(
        "/api/v1/suppliers", json={"code": "SUP-A", "name": "dup"}, headers=headers
    )
    assert r.status_code == 409
    assert r.json()["details"][0]["field"] == "code"
    r = await client.patch(
        f"/api/v1/suppliers/{sid}", json={"payment_days": 45, "status": "active"}, headers=headers
    )
    assert r.json()["payment_days"] == 45
    p = await make_product(session, name="百岁山 570ml")
    other = await _supplier(client, headers, "SUP-B")
    for supplier in (other, sid):
        r = await client.put(
            f"/api/v1/suppliers/{supplier}/products/{p.id}",
            json={"cost_fen": 120, "lead_time_days": 2, "min_order_qty": 24, "is_preferred": True},
            headers=headers,
        )
        assert r.status_code == 200, r.text
    r = await client.get(f"/api/v1/suppliers/{sid}", headers=headers)
    assert r.json()["products"] == [
        {
            "supplier_id": sid,
            "product_id": p.id,
            "product_name": "百岁山 570ml",
            "spec": "",
            "barcode": None,
            "supplier_sku": "",
            "cost_fen": 120,
            "lead_time_days": 2,
            "min_order_qty": 24,
            "is_preferred": True,
        }
    ]
    r = await client.get(f"/api/v1/suppliers/{other}", headers=headers)
    assert r.json()["products"][0]["is_preferred"] is False  # one preferred supplier per product
    r = await client.get(f"/api/v1/suppliers?product_id={p.id}", headers=headers)
    assert r.json()["total"] == 2
    r = await client.put(
        f"/api/v1/suppliers/{sid}/products/{p.id}",
        json={"cost_fen": 1.5},
        headers=headers,
    )
    assert r.status_code == 422
    r = await client.delete(f"/api/v1/suppliers/{other}/products/{p.id}", headers=headers)
    assert r.status_code == 204


async def test_purchase_order_lifecycle_books_receipts(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    headers = await _admin(session, store)
    sid = await _supplier(client, headers, "SUP-PO")
    a = await make_product(session, name="可口可乐", cost_fen=200)
    b = await make_product(session, name="酸奶", track_batches=True, shelf_life_days=21)
    await client.put(
        f"/api/v1/suppliers/{sid}/products/{a.id}", json={"cost_fen": 180}, headers=headers
    )
    r = await client.post(
        "/api/v1/purchase-orders",
        json={
            "store_id": store.id,
            "supplier_id": sid,
            "lines": [
                {"product_id": a.id, "quantity": 24},
                {"product_id": b.id, "quantity": 10, "cost_fen": 350},
            ],
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    po = r.json()
    assert po["status"] == "draft"
    assert [(ln["cost_fen"], ln["amount_fen"]) for ln in po["lines"]] == [(180, 4320), (350, 3500)]
    assert po["total_fen"] == 7820
    url = f"/api/v1/purchase-orders/{po['id']}"

    r = await client.post(
        f"{url}/receive", json={"lines": [{"product_id": a.id, "quantity": 1}]}, headers=headers
    )
    assert r.status_code == 409
    assert r.json()["message"].endswith("cannot go from draft to partially_received")
    r = await client.patch(
        url,
        json={
            "lines": [{"product_id": a.id, "quantity": 48}, {"product_id": b.id, "quantity": 10}]
        },
        headers=headers,
    )
    assert r.json()["total_fen"] == 48 * 180 + 10 * b.cost_fen
    assert (await client.post(f"{url}/submit", headers=headers)).json()["status"] == "submitted"
    r = await client.patch(url, json={"note": "late"}, headers=headers)
    assert r.status_code == 409

    r = await client.post(
        f"{url}/receive",
        json={"lines": [{"product_id": a.id, "quantity": 50}]},
        headers=headers,
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["reason"] == "more_than_outstanding"
    r = await client.post(
        f"{url}/receive",
        json={
            "lines": [
                {"product_id": a.id, "quantity": 30},
                {"product_id": b.id, "quantity": 10, "expiry_date": "2030-01-31", "batch_no": "L1"},
            ]
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "partially_received"
    r = await client.post(
        f"{url}/receive", json={"lines": [{"product_id": a.id, "quantity": 18}]}, headers=headers
    )
    assert r.json()["status"] == "received"
    assert [ln["quantity_received"] for ln in r.json()["lines"]] == [48, 10]
    assert await inventory.balances(session, store.id, [a.id, b.id]) == {a.id: 48, b.id: 10}
    moves = (
        await session.scalars(
            select(StockMovement).where(
                StockMovement.store_id == store.id, StockMovement.document_type == "purchase_order"
            )
        )
    ).all()
    assert sorted(m.quantity for m in moves) == [10, 18, 30]
    assert {m.kind for m in moves} == {"purchase_receipt"}
    batch = await session.scalar(select(StockBatch).where(StockBatch.product_id == b.id))
    assert batch is not None
    assert (batch.batch_no, batch.expiry_date.isoformat(), batch.quantity_received) == (
        "L1",
        "2030-01-31",
        10,
    )

    r = await client.post(f"{url}/cancel", json={}, headers=headers)
    assert r.status_code == 409
    assert r.json()["message"].endswith("cannot go from received to cancelled")
    assert (await client.post(f"{url}/close", json={}, headers=headers)).json()[
        "status"
    ] == "closed"


async def test_purchase_orders_are_scoped_to_the_actors_stores(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    mine, theirs = await make_store(session), await make_store(session)
    boss = await auth_headers(session, await make_user(session, role="super_admin"))
    sid = await _supplier(client, boss, "SUP-SC")
    p = await make_product(session)
    r = await client.post(
        "/api/v1/purchase-orders",
        json={
            "store_id": theirs.id,
            "supplier_id": sid,
            "lines": [{"product_id": p.id, "quantity": 1}],
        },
        headers=boss,
    )
    po_id = r.json()["id"]
    headers = await _admin(session, mine)
    assert (
        await client.get(f"/api/v1/purchase-orders/{po_id}", headers=headers)
    ).status_code == 404
    assert (
        await client.post(f"/api/v1/purchase-orders/{po_id}/submit", headers=headers)
    ).status_code == 404
    assert (await client.get("/api/v1/purchase-orders", headers=headers)).json()["total"] == 0
    r = await client.post(
        "/api/v1/purchase-orders",
        json={
            "store_id": theirs.id,
            "supplier_id": sid,
            "lines": [{"product_id": p.id, "quantity": 1}],
        },
        headers=headers,
    )
    assert r.status_code == 404
    r = await client.post(
        "/api/v1/purchase-orders",
        json={
            "store_id": mine.id,
            "supplier_id": sid,
            "lines": [{"product_id": p.id, "quantity": 0}],
        },
        headers=headers,
    )
    assert r.status_code == 422
    r = await client.post(
        "/api/v1/purchase-orders",
        json={
            "store_id": mine.id,
            "supplier_id": sid,
            "lines": [{"product_id": p.id, "quantity": 1}, {"product_id": p.id, "quantity": 2}],
        },
        headers=headers,
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "lines[1].product_id"


async def test_draft_lines_are_edited_until_submitted(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from selfmart.models import AuditLog

    store = await make_store(session)
    headers = await _admin(session, store)
    sid = await _supplier(client, headers, "SUP-EDIT")
    a = await make_product(session, name="可口可乐", cost_fen=200)
    b = await make_product(session, name="雪碧", cost_fen=190)
    c = await make_product(session, name="芬达", cost_fen=180)
    r = await client.post(
        "/api/v1/purchase-orders",
        json={
            "store_id": store.id,
            "supplier_id": sid,
            "lines": [{"product_id": a.id, "quantity": 24}, {"product_id": b.id, "quantity": 12}],
        },
        headers=headers,
    )
    url = f"/api/v1/purchase-orders/{r.json()['id']}"

    # Change a quantity and a cost, drop a line, add one.
    r = await client.patch(
        url,
        json={
            "lines": [
                {"product_id": a.id, "quantity": 36, "cost_fen": 195},
                {"product_id": c.id, "quantity": 6},
            ],
            "note": "加芬达",
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(ln["product_id"], ln["quantity_ordered"], ln["cost_fen"]) for ln in body["lines"]] == [
        (a.id, 36, 195),
        (c.id, 6, 180),
    ]
    assert body["total_fen"] == 36 * 195 + 6 * 180
    assert body["note"] == "加芬达"
    entry = await session.scalar(
        select(AuditLog)
        .where(AuditLog.action == "purchase_order.update", AuditLog.entity_id == str(body["id"]))
        .order_by(AuditLog.id.desc())
    )
    assert entry is not None
    assert entry.changes["lines"] == {
        "before": {str(a.id): [24, 200], str(b.id): [12, 190]},
        "after": {str(a.id): [36, 195], str(c.id): [6, 180]},
    }

    # Bad lines are refused naming the line; nothing changes.
    for lines, field in [
        (
            [{"product_id": a.id, "quantity": 1}, {"product_id": a.id, "quantity": 2}],
            "lines[1].product_id",
        ),
        ([{"product_id": a.id, "quantity": 0}], "body.lines.0.quantity"),
        ([{"product_id": a.id, "quantity": "5"}], "body.lines.0.quantity"),
        ([{"product_id": a.id, "quantity": True}], "body.lines.0.quantity"),
        ([{"product_id": a.id, "quantity": 2.5}], "body.lines.0.quantity"),
        ([], "body.lines"),
    ]:
        r = await client.patch(url, json={"lines": lines}, headers=headers)
        assert r.status_code == 422, (lines, r.text)
        assert r.json()["details"][0]["field"] == field, lines
    r = await client.patch(
        url, json={"lines": [{"product_id": 2**31 - 1, "quantity": 1}]}, headers=headers
    )
    assert r.status_code == 404
    assert (await client.get(url, headers=headers)).json()["total_fen"] == 36 * 195 + 6 * 180

    # Submitted: the lines are what the supplier was sent.
    assert (await client.post(f"{url}/submit", headers=headers)).status_code == 200
    r = await client.patch(
        url, json={"lines": [{"product_id": a.id, "quantity": 1}]}, headers=headers
    )
    assert r.status_code == 409
    assert r.json()["error"] == "illegal_transition"
    assert "submitted" in r.json()["message"]
    assert [(d["field"], d["message"]) for d in r.json()["details"]] == [
        ("status", "submitted"),
        ("target_status", "draft"),
    ]
    r = await client.get(url, headers=headers)
    assert [ln["quantity_ordered"] for ln in r.json()["lines"]] == [36, 6]
