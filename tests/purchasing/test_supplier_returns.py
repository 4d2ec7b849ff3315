"""Goods returned to a supplier through the API: off the store's ledger as supplier_return
movements whose document is the supplier, never below zero, audited; and the supplier's
settlement settings (basis, shrinkage) set and refused like any field."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import AuditLog, StockMovement

from ..builders import auth_headers, make_store, make_user
from ..inventory.builders import make_product, stock


async def test_return_to_supplier(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    other = await make_store(session)
    h = await auth_headers(session, await make_user(session, role="admin", stores=[store]))
    r = await client.post(
        "/api/v1/suppliers", json={"code": "RET-1", "name": "退货供应商"}, headers=h
    )
    sid = r.json()["id"]
    assert (r.json()["settlement_basis"], r.json()["shrinkage_borne"]) == ("received", False)
    milk = await make_product(session)
    await stock(session, store.id, milk.id, 5)

    r = await client.post(
        f"/api/v1/suppliers/{sid}/returns",
        json={"store_id": store.id, "lines": [{"product_id": milk.id, "quantity": 2}],
              "note": "临期"},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["lines"] == [{"product_id": milk.id, "quantity": 2, "balance_after": 3}]
    number = r.json()["number"]
    moved = (
        await session.scalars(select(StockMovement).where(StockMovement.kind == "supplier_return"))
    ).one()
    assert (moved.quantity, moved.document_type, moved.document_id) == (-2, "supplier", str(sid))
    assert moved.reason == f"{number} 临期"
    audit = (
        await session.scalars(select(AuditLog).where(AuditLog.action == "supplier.return"))
    ).one()
    assert audit.entity_id == str(sid)

    # More than the shelf holds: 409 naming the product, nothing booked.
    r = await client.post(
        f"/api/v1/suppliers/{sid}/returns",
        json={"store_id": store.id, "lines": [{"product_id": milk.id, "quantity": 4}]},
        headers=h,
    )
    assert (r.status_code, r.json()["error"]) == (409, "insufficient_stock")
    # A store the user does not see: 404.
    r = await client.post(
        f"/api/v1/suppliers/{sid}/returns",
        json={"store_id": other.id, "lines": [{"product_id": milk.id, "quantity": 1}]},
        headers=h,
    )
    assert r.status_code == 404
    r = await client.post(
        f"/api/v1/suppliers/{sid}/returns",
        json={"store_id": store.id, "lines": [{"product_id": milk.id, "quantity": 0}]},
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.lines.0.quantity"


async def test_settlement_settings(client: httpx.AsyncClient, session: AsyncSession) -> None:
    h = await auth_headers(session, await make_user(session, role="admin"))
    r = await client.post(
        "/api/v1/suppliers",
        json={"code": "CON-1", "name": "代销商", "settlement_basis": "consignment",
              "shrinkage_borne": True},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert (r.json()["settlement_basis"], r.json()["shrinkage_borne"]) == ("consignment", True)
    r = await client.patch(
        f"/api/v1/suppliers/{sid}", json={"settlement_basis": "received"}, headers=h
    )
    assert (r.json()["settlement_basis"], r.json()["shrinkage_borne"]) == ("received", True)
    r = await client.patch(f"/api/v1/suppliers/{sid}", json={"settlement_basis": "sold"}, headers=h)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "body.settlement_basis"
