"""Purchasing documents in a real browser against the demo chain: a transfer received in two
parts (what is in transit shown per line), and a draft purchase order's lines edited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from .test_catalog import api_client
from .test_console import login
from .test_inventory import _confirm

pytestmark = pytest.mark.browser


@pytest.fixture
def api(server_url: str) -> Iterator[httpx.Client]:
    with api_client(server_url) as client:
        yield client


def _stocked(api: httpx.Client, store_id: int, at_least: int, n: int) -> list[dict[str, Any]]:
    """`n` products the store has at least `at_least` units of."""
    r = api.get(f"/stores/{store_id}/stock", params={"size": 100, "sort": "-quantity"})
    assert r.status_code == 200, r.text
    rows = [row for row in r.json()["items"] if row["quantity"] >= at_least]
    assert len(rows) >= n, "the demo store has too little stock"
    return rows[:n]


def _two_stores(api: httpx.Client) -> tuple[int, int]:
    stores = api.get("/stores", params={"size": 10}).json()["items"]
    assert len(stores) >= 2
    return int(stores[0]["id"]), int(stores[1]["id"])


def test_transfer_received_in_two_parts(page: Page, api: httpx.Client) -> None:
    src, dst = _two_stores(api)
    first, second = _stocked(api, src, 3, 2)
    r = api.post(
        "/transfers",
        json={
            "from_store_id": src,
            "to_store_id": dst,
            "lines": [
                {"product_id": first["product_id"], "quantity": 3},
                {"product_id": second["product_id"], "quantity": 2},
            ],
        },
    )
    assert r.status_code == 201, r.text
    transfer = r.json()
    assert api.post(f"/transfers/{transfer['id']}/ship").status_code == 200

    login(page, "superadmin")
    page.goto("/purchasing/transfers")
    row = page.locator("[data-test=transfers-table] .el-table__row", has_text=transfer["number"])
    expect(row).to_be_visible()
    row.locator("[data-test=transfer-receive]").click()
    dialog = page.locator(".el-dialog[data-test=transfer-receive-dialog]")
    expect(dialog).to_be_visible()
    qty = dialog.locator("[data-test=transfer-receive-qty] input")
    # Prefilled with everything in transit; 1 unit of the first line arrives now, none of the 2nd.
    expect(qty.nth(0)).to_have_value("3")
    qty.nth(0).fill("1")
    qty.nth(1).fill("0")
    dialog.locator("[data-test=transfer-receive-partial]").click()
    _confirm(page)
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("部分到货")

    row.locator(".el-table__expand-icon").click()
    lines = page.locator("[data-test=transfer-lines]")
    expect(lines.locator("[data-test=transfer-line-in-transit]").nth(0)).to_have_text("2")
    expect(lines.locator("[data-test=transfer-line-in-transit]").nth(1)).to_have_text("2")

    # The rest arrives: receive and finish; nothing lost.
    row.locator("[data-test=transfer-receive]").click()
    expect(dialog).to_be_visible()
    expect(qty.nth(0)).to_have_value("2")
    expect(qty.nth(1)).to_have_value("2")
    dialog.locator("[data-test=transfer-receive-final]").click()
    _confirm(page)
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("已到货")

    detail = api.get(f"/transfers/{transfer['id']}").json()
    assert [(ln["quantity_received"], ln["quantity_in_transit"]) for ln in detail["lines"]] == [
        (3, 0),
        (2, 0),
    ]
    moves = api.get(
        f"/stores/{dst}/stock/movements",
        params={"kind": "transfer_in", "document_type": "transfer", "document_id": transfer["id"]},
    ).json()["items"]
    # One ledger row per receipt and product: 1 then 2 of the first, 2 of the second.
    assert sorted(m["quantity"] for m in moves) == [1, 2, 2]
    assert re.match(r"^TR", transfer["number"])


def test_draft_purchase_order_lines_are_edited(page: Page, api: httpx.Client) -> None:
    store, _ = _two_stores(api)
    supplier = api.get("/suppliers", params={"status": "active", "size": 1}).json()["items"][0]
    first, second = _stocked(api, store, 0, 2)
    r = api.post(
        "/purchase-orders",
        json={
            "store_id": store,
            "supplier_id": supplier["id"],
            "lines": [
                {"product_id": first["product_id"], "quantity": 12, "cost_fen": 250},
                {"product_id": second["product_id"], "quantity": 5, "cost_fen": 100},
            ],
        },
    )
    assert r.status_code == 201, r.text
    po = r.json()

    login(page, "superadmin")
    page.goto("/purchasing/orders?status=draft")
    row = page.locator("[data-test=po-table] .el-table__row", has_text=po["number"])
    row.locator("[data-test=po-open]").click()
    drawer = page.locator("[data-test=po-drawer]")
    expect(drawer.locator("[data-test=po-drawer-status]")).to_have_text("草稿")
    drawer.locator("[data-test=po-edit]").click()
    dialog = page.locator(".el-dialog[data-test=po-create-dialog]")
    expect(dialog).to_be_visible()
    editor = dialog.locator("[data-test=lines-editor]")
    # The saved lines come back with their product names, quantities and costs.
    expect(editor.locator("[data-test=product-picker]").first).to_contain_text(
        first["product_name"]
    )
    expect(editor.locator("[data-test=line-qty]").first).to_have_value("12")
    expect(editor.locator("[data-test=line-cost]").first).to_have_value("2.50")
    editor.locator("[data-test=line-qty]").first.fill("20")
    editor.locator(".line").nth(1).locator("button").click()  # drop the second line
    dialog.locator("[data-test=po-save]").click()
    expect(dialog).to_be_hidden()

    lines = drawer.locator("[data-test=po-lines] .el-table__row")
    expect(lines).to_have_count(1)
    expect(lines.first).to_contain_text(first["product_name"])
    expect(lines.first.locator("td").nth(2)).to_have_text("20")
    assert api.get(f"/purchase-orders/{po['id']}").json()["total_fen"] == 20 * 250

    # Once submitted, the lines are what the supplier was sent: no edit button.
    drawer.locator("[data-test=po-submit]").click()
    _confirm(page)
    expect(drawer.locator("[data-test=po-drawer-status]")).to_have_text("已提交")
    expect(drawer.locator("[data-test=po-edit]")).to_have_count(0)


def test_receiving_nothing_says_so_and_lines_tell_same_name_products_apart(
    page: Page, api: httpx.Client
) -> None:
    store, _ = _two_stores(api)
    supplier = api.get("/suppliers", params={"status": "active", "size": 1}).json()["items"][0]
    first, second = _stocked(api, store, 0, 2)
    r = api.post(
        "/purchase-orders",
        json={
            "store_id": store,
            "supplier_id": supplier["id"],
            "lines": [
                {"product_id": first["product_id"], "quantity": 6, "cost_fen": 250},
                {"product_id": second["product_id"], "quantity": 4, "cost_fen": 100},
            ],
        },
    )
    assert r.status_code == 201, r.text
    po = r.json()
    assert api.post(f"/purchase-orders/{po['id']}/submit").status_code == 200

    login(page, "superadmin")
    page.goto("/purchasing/orders?status=submitted")
    row = page.locator("[data-test=po-table] .el-table__row", has_text=po["number"])
    row.locator("[data-test=po-open]").click()
    drawer = page.locator("[data-test=po-drawer]")
    expect(drawer.locator("[data-test=po-drawer-status]")).to_have_text("已提交")
    # Each line names its product with spec and barcode, as the stock list does.
    label = drawer.locator("[data-test=po-lines] .el-table__row").first.locator(
        "[data-test=product-label]"
    )
    expect(label).to_contain_text(first["product_name"])
    for part in (first["spec"], first["barcode"]):
        if part:
            expect(label).to_contain_text(part)
    # 确认收货 with no quantity entered explains itself and books nothing.
    drawer.locator("[data-test=po-receive]").click()
    expect(page.locator(".el-message", has_text="请先填写本次到货数量")).to_be_visible()
    expect(page.locator(".el-message-box")).to_have_count(0)
    assert api.get(f"/purchase-orders/{po['id']}").json()["status"] == "submitted"


def test_saved_stocktake_counts_show_as_values(page: Page, api: httpx.Client) -> None:
    store, _ = _two_stores(api)
    r = api.post("/stocktakes", json={"store_id": store, "note": "browser"})
    assert r.status_code == 201, r.text
    take = r.json()
    line = take["lines"][0]
    r = api.post(
        f"/stocktakes/{take['id']}/counts",
        json={"counts": [{"product_id": line["product_id"], "counted_qty": 7}]},
    )
    assert r.status_code == 200, r.text

    login(page, "superadmin")
    page.goto("/purchasing/stocktakes")
    page.locator("[data-test=stocktakes-table] .el-table__row", has_text=take["number"]).locator(
        "[data-test=stocktake-open]"
    ).click()
    rows = page.locator("[data-test=stocktake-lines] .el-table__row")
    counted = rows.filter(has_text=line["product_name"]).first
    expect(counted.locator("[data-test=stocktake-count] input")).to_have_value("7")
    # Nothing changed: saving says so instead of sending the same counts again.
    page.locator("[data-test=stocktake-save]").click()
    expect(page.locator(".el-message", has_text="没有需要保存的修改")).to_be_visible()
    counted.locator("[data-test=stocktake-count] input").fill("9")
    page.locator("[data-test=stocktake-save]").click()
    expect(page.locator(".el-message--success", has_text="已保存")).to_be_visible()
    got = api.get(f"/stocktakes/{take['id']}").json()["lines"]
    assert [ln["counted_qty"] for ln in got if ln["product_id"] == line["product_id"]] == [9]
    api.post(f"/stocktakes/{take['id']}/cancel")
