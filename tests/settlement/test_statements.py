"""Supplier statements: each line worked out from the ledger to the fen, for a supplier paid
on goods received (less returns and the shrinkage it bears) and a consignment supplier (goods
sold, plus the shrinkage we bear); then through the API: overlap refused, review, approve
(frozen), paid, exported, each step audited, and what was booked late into an approved
period counted in the next statement."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import clock_at
from selfmart.models import AuditLog, Product, Store, Supplier
from selfmart.settlement import statements
from selfmart.settlement.exceptions import PeriodNotOver
from tests.builders import auth_headers, make_store, make_user
from tests.inventory.builders import make_product

from .builders import (
    FINANCE,
    at,
    customer_returned,
    make_supplier,
    receive_more,
    received,
    returned_to,
    shrunk,
    sold,
    supplies,
)

NOV = (date(2026, 11, 1), date(2026, 11, 30))
DEC = (date(2026, 12, 1), date(2026, 12, 31))


def lines_of(stmt: Any) -> list[tuple[str, int, int, int, int, bool]]:
    return sorted(
        (ln.kind, ln.product_id, ln.quantity, ln.unit_cost_fen, ln.amount_fen, ln.late)
        for ln in stmt.lines
    )


async def received_world(
    session: AsyncSession,
) -> tuple[Store, Supplier, Product, Product]:
    """Supplier A, paid on goods received and bearing shrinkage, with known November totals:
    goods 2,440; returns -240; shrinkage -540; owed 1,660 fen."""
    store = await make_store(session)
    water = await make_product(session, name="矿泉水")
    noodles = await make_product(session, name="方便面")
    a = await make_supplier(session, basis="received", shrinkage_borne=True)
    b = await make_supplier(session, basis="received", shrinkage_borne=True)
    await supplies(session, a, water, 120, preferred=True)
    await supplies(session, a, noodles, 300)
    await supplies(session, b, water, 110)
    # October: before the period.
    await received(session, store, a, "2026-10-20T04:00", [(water, 5, None)])
    # November: water 10 x 120 = 1,200; noodles at the order's own 310: 3 now, 1 later = 1,240.
    po = await received(
        session, store, a, "2026-11-10T04:00", [(water, 10, None), (noodles, 4, 310)],
        receive=[(water, 10), (noodles, 3)],
    )  # fmt: skip
    with clock_at(at("2026-11-20T04:00")):
        await receive_more(session, po, [(noodles, 1)])
    # Another supplier's water: not A's.
    await received(session, store, b, "2026-11-11T04:00", [(water, 7, None)])
    # Sold water is nothing to a supplier paid on receipt.
    await sold(session, store, water, 4, "2026-11-12T04:00")
    # Two waters back to A: -240.
    await returned_to(session, a, store, water, 2, "2026-11-15T04:00")
    # Shrinkage A bears: a noodle written off (-300 at A's cost), water lost 3 found 1 (-240).
    await shrunk(session, store, noodles, -1, "write_off", "2026-11-16T04:00")
    await shrunk(session, store, water, -3, "stocktake_loss", "2026-11-17T04:00")
    await shrunk(session, store, water, +1, "stocktake_gain", "2026-11-18T04:00")
    # December: not in November's statement.
    await shrunk(session, store, water, -1, "write_off", "2026-12-01T04:00")
    return store, a, water, noodles


async def test_received_basis_lines_to_the_fen(session: AsyncSession) -> None:
    _, a, water, noodles = await received_world(session)
    stmt = await statements.generate(session, a.id, *NOV, actor=FINANCE)
    assert lines_of(stmt) == sorted(
        [
            ("received", water.id, 10, 120, 1200, False),
            ("received", noodles.id, 4, 310, 1240, False),
            ("returned", water.id, 2, 120, -240, False),
            ("shrinkage", noodles.id, -1, 300, -300, False),
            ("shrinkage", water.id, -2, 120, -240, False),
        ]
    )
    assert (stmt.goods_fen, stmt.returns_fen, stmt.shrinkage_fen, stmt.total_fen) == (
        2440, -240, -540, 1660,
    )  # fmt: skip
    assert {ln.product_name for ln in stmt.lines} == {"矿泉水", "方便面"}


async def test_shrinkage_the_supplier_does_not_bear_is_not_deducted(
    session: AsyncSession,
) -> None:
    _, a, _, _ = await received_world(session)
    a.shrinkage_borne = False
    stmt = await statements.generate(session, a.id, *NOV, actor=FINANCE)
    assert {ln.kind for ln in stmt.lines} == {"received", "returned"}
    assert stmt.total_fen == 2440 - 240


async def test_consignment_lines_to_the_fen(session: AsyncSession) -> None:
    """Goods sold (sales less customer returns) at the supplier's cost, days in the store's
    zone (Beijing), plus the shrinkage we bear; returns to it and receipts are not money."""
    store = await make_store(session)  # Asia/Shanghai
    tea = await make_product(session, name="乌龙茶")
    c = await make_supplier(session, basis="consignment", shrinkage_borne=False)
    await supplies(session, c, tea, 200)
    await received(session, store, c, "2026-11-02T04:00", [(tea, 30, 180)])
    await sold(session, store, tea, 5, "2026-11-05T04:00")
    await sold(session, store, tea, 3, "2026-11-25T04:00")
    await customer_returned(session, store, tea, 1, "2026-11-26T04:00")
    await sold(session, store, tea, 2, "2026-11-30T15:30")  # 23:30 on 30 Nov in Beijing
    await sold(session, store, tea, 4, "2026-11-30T16:30")  # 00:30 on 1 Dec in Beijing
    await sold(session, store, tea, 6, "2026-10-31T15:59")  # 23:59 on 31 Oct in Beijing
    await shrunk(session, store, tea, -2, "write_off", "2026-11-12T04:00")
    await returned_to(session, c, store, tea, 1, "2026-11-13T04:00")
    stmt = await statements.generate(session, c.id, *NOV, actor=FINANCE)
    assert lines_of(stmt) == [
        ("shrinkage", tea.id, 2, 200, 400, False),
        ("sold", tea.id, 9, 200, 1800, False),
    ]
    assert (stmt.goods_fen, stmt.returns_fen, stmt.shrinkage_fen, stmt.total_fen) == (
        1800, 0, 400, 2200,
    )  # fmt: skip
    c.shrinkage_borne = True
    await statements.delete_statement(session, stmt.id, actor=FINANCE)
    stmt = await statements.generate(session, c.id, *NOV, actor=FINANCE)
    assert lines_of(stmt) == [("sold", tea.id, 9, 200, 1800, False)]


async def test_a_product_with_two_suppliers_is_settled_with_the_preferred_one(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    juice = await make_product(session)
    c1 = await make_supplier(session, basis="consignment")
    c2 = await make_supplier(session, basis="consignment")
    await supplies(session, c1, juice, 100)
    await supplies(session, c2, juice, 90, preferred=True)
    await sold(session, store, juice, 3, "2026-11-05T04:00")
    one = await statements.generate(session, c1.id, *NOV, actor=FINANCE)
    two = await statements.generate(session, c2.id, *NOV, actor=FINANCE)
    assert (one.total_fen, two.total_fen) == (0, 270)


async def _finance(session: AsyncSession) -> dict[str, str]:
    return await auth_headers(session, await make_user(session, role="finance"))


async def test_lifecycle_through_the_api(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store, a, water, noodles = await received_world(session)
    h = await _finance(session)
    base = "/api/v1/settlement/statements"
    r = await client.post(
        base,
        json={"supplier_id": a.id, "period_start": "2026-11-01", "period_end": "2026-11-30"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    nov = r.json()
    assert (nov["status"], nov["total_fen"], len(nov["lines"])) == ("draft", 1660, 5)
    sid = nov["id"]

    # Overlapping periods for the same supplier: 409 naming the statement.
    r = await client.post(
        base,
        json={"supplier_id": a.id, "period_start": "2026-11-30", "period_end": "2026-12-05"},
        headers=h,
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "statement_overlaps"
    assert nov["number"] in r.json()["details"][0]["message"]
    # A later period while November is still open: 409.
    r = await client.post(
        base,
        json={"supplier_id": a.id, "period_start": "2026-12-01", "period_end": "2026-12-31"},
        headers=h,
    )
    assert (r.status_code, r.json()["error"]) == (409, "earlier_statement_open")
    # Bad periods name the field.
    r = await client.post(
        base,
        json={"supplier_id": a.id, "period_start": "2026-10-31", "period_end": "2026-10-01"},
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "period_end"

    # Approve needs a review first; paying needs an approval.
    r = await client.post(f"{base}/{sid}/approve", json={}, headers=h)
    assert (r.status_code, r.json()["error"]) == (409, "illegal_transition")
    r = await client.post(f"{base}/{sid}/review", json={"note": "checked"}, headers=h)
    assert r.json()["status"] == "reviewed"
    r = await client.post(f"{base}/{sid}/pay", json={"payment_reference": "X1"}, headers=h)
    assert r.status_code == 409
    r = await client.post(f"{base}/{sid}/approve", json={}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    assert r.json()["approved_by"] == r.json()["reviewed_by"] != "finance"
    r = await client.post(f"{base}/{sid}/approve", json={}, headers=h)
    assert (r.status_code, r.json()["error"]) == (409, "illegal_transition")

    # Frozen: no regenerating, no deleting.
    assert (await client.post(f"{base}/{sid}/regenerate", headers=h)).status_code == 409
    assert (await client.delete(f"{base}/{sid}", headers=h)).status_code == 409

    # A write-off booked now for a November day goes into December's statement, marked late.
    await shrunk(session, store, noodles, -1, "write_off", "2026-11-28T04:00")
    r = await client.get(f"{base}/{sid}", headers=h)
    assert (r.json()["total_fen"], len(r.json()["lines"])) == (1660, 5)
    r = await client.post(
        base,
        json={"supplier_id": a.id, "period_start": "2026-12-01", "period_end": "2026-12-31"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    dec = r.json()
    assert sorted(
        (ln["kind"], ln["product_id"], ln["amount_fen"], ln["late"]) for ln in dec["lines"]
    ) == sorted([("shrinkage", noodles.id, -300, True), ("shrinkage", water.id, -120, False)])
    # While December is not over (31 Dec, 23:30 in Shanghai), it cannot be approved.
    await client.post(f"{base}/{dec['id']}/review", json={}, headers=h)
    with clock_at(at("2026-12-31T15:30")), pytest.raises(PeriodNotOver):
        await statements.approve(session, dec["id"], actor=FINANCE)
    with clock_at(at("2026-12-31T16:00")):  # midnight in Shanghai: December is over
        assert (await statements.approve(session, dec["id"], actor=FINANCE)).status == "approved"

    # Paid, with the bank's reference.
    r = await client.post(f"{base}/{sid}/pay", json={"payment_reference": ""}, headers=h)
    assert r.status_code == 422
    r = await client.post(
        f"{base}/{sid}/pay", json={"payment_reference": "BANK-20261206-01"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["payment_reference"]) == ("paid", "BANK-20261206-01")

    r = await client.get(f"{base}?supplier_id={a.id}", headers=h)
    assert [s["status"] for s in r.json()["items"]] == ["approved", "paid"]
    r = await client.get(f"{base}?status=paid&supplier_id={a.id}", headers=h)
    assert r.json()["total"] == 1

    # Export: the sheet's total and lines.
    r = await client.get(f"{base}/{sid}/export", headers=h)
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    cells = {row[0]: row[1] for row in ws.iter_rows(values_only=True) if row and row[0]}
    assert cells["应付合计(元)"] == 16.6
    assert cells["付款流水号"] == "BANK-20261206-01"
    assert (
        sum(1 for row in ws.iter_rows(values_only=True) if row[0] in ("收货", "退货", "损耗")) == 5
    )
    r = await client.get(f"{base}/{sid}/export", headers={**h, "Accept-Language": "en"})
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    english = {row[0]: row[1] for row in ws.iter_rows(values_only=True) if row and row[0]}
    assert english["Total payable (CNY)"] == 16.6
    assert english["Payment reference"] == "BANK-20261206-01"
    assert english["Status"] == "Paid"
    kinds = ("Received", "Returned", "Shrinkage")
    assert sum(1 for row in ws.iter_rows(values_only=True) if row[0] in kinds) == 5

    actions = list(
        await session.scalars(
            select(AuditLog.action)
            .where(AuditLog.entity_type == "supplier_statement", AuditLog.entity_id == str(sid))
            .order_by(AuditLog.id)
        )
    )
    assert actions == [
        "supplier_statement.generate",
        "supplier_statement.reviewed",
        "supplier_statement.approved",
        "supplier_statement.paid",
    ]


async def test_draft_regenerates_and_deletes(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, a, water, _ = await received_world(session)
    h = await _finance(session)
    stmt = await statements.generate(session, a.id, *NOV, actor=FINANCE)
    await shrunk(session, store, water, -1, "stocktake_loss", "2026-11-29T04:00")
    r = await client.post(f"/api/v1/settlement/statements/{stmt.id}/regenerate", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["total_fen"] == 1660 - 120
    r = await client.delete(f"/api/v1/settlement/statements/{stmt.id}", headers=h)
    assert r.status_code == 204
    r = await client.get(f"/api/v1/settlement/statements/{stmt.id}", headers=h)
    assert (r.status_code, r.json()["error"]) == (404, "statement_not_found")


async def test_only_users_of_every_store_settle_with_suppliers(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    a = await make_supplier(session)
    role_user = await make_user(session, role="admin", stores=[store])
    h = await auth_headers(session, role_user)
    r = await client.get("/api/v1/settlement/statements", headers=h)
    assert r.status_code == 403  # admin reads settlement, but is bound to stores
    assert r.json()["error"] == "chain_wide_only"
    h = await _finance(session)
    r = await client.post(
        "/api/v1/settlement/statements",
        json={"supplier_id": a.id, "period_start": "2026-11-01", "period_end": "2026-11-30"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["lines"], r.json()["total_fen"]) == ([], 0)
