"""Inventory and purchasing pages in a real browser against the demo chain: stock per store,
an adjustment that shows in the ledger, and a purchase order drafted from reorder suggestions
and received into stock."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from .test_console import login

pytestmark = pytest.mark.browser


def _first_int(text: str) -> int:
    match = re.search(r"-?\d+", text)
    assert match, text
    return int(match.group())


def test_stock_list_of_a_demo_store_shows_quantities(page: Page) -> None:
    login(page, "superadmin")
    page.goto("/inventory/stock")
    table = page.locator("[data-test=stock-table]")
    expect(table.locator(".el-table__row").first).to_be_visible()
    quantities = [_first_int(q) for q in table.locator("[data-test=stock-qty]").all_inner_texts()]
    assert len(quantities) >= 10
    assert sum(quantities) > 0
    # The state filter narrows the list to what is out of stock (or an empty state says so).
    expect(table).to_contain_text(re.compile("正常|偏低|缺货"))


def test_an_adjustment_with_a_reason_appears_in_the_ledger(page: Page) -> None:
    login(page, "superadmin")
    page.goto("/inventory/stock")
    table = page.locator("[data-test=stock-table]")
    row = table.locator(".el-table__row").first
    expect(row).to_be_visible()
    before = _first_int(row.locator("[data-test=stock-qty]").inner_text())
    reason = f"货架补录 {uuid.uuid4().hex[:6]}"

    row.locator("[data-test=stock-adjust]").click()
    dialog = page.locator(".el-dialog[data-test=adjust-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-test=stock-change-value]").fill("1.5")
    dialog.locator("[data-test=stock-change-reason]").fill(reason)
    dialog.locator("[data-test=stock-change-save]").click()
    expect(dialog).to_contain_text("请输入整数件数")  # fractions never reach the server
    dialog.locator("[data-test=stock-change-value]").fill("5")
    expect(dialog.locator("[data-test=stock-change-after]")).to_have_text(str(before + 5))
    dialog.locator("[data-test=stock-change-save]").click()
    expect(dialog).to_be_hidden()
    expect(row.locator("[data-test=stock-qty]")).to_have_text(str(before + 5))

    row.locator("[data-test=stock-ledger]").click()
    expect(page).to_have_url(re.compile(r"/inventory/ledger\?"))
    ledger = page.locator("[data-test=ledger-table]")
    first = ledger.locator(".el-table__row").first
    expect(first).to_contain_text(reason)
    expect(first).to_contain_text("手工调整")
    expect(first).to_contain_text("+5")
    expect(first).to_contain_text(str(before + 5))
    expect(page.locator("[data-test=balance-chart] canvas")).to_be_visible()


def test_alerts_name_products_with_spec_and_barcode_without_a_request_per_row(
    page: Page,
) -> None:
    login(page, "superadmin")
    per_product: list[str] = []
    page.on(
        "request",
        lambda r: per_product.append(r.url) if re.search(r"/api/v1/products/\d+$", r.url) else None,
    )
    page.goto("/inventory/alerts")
    table = page.locator("[data-test=alerts-table]")
    expect(table.locator(".el-table__row").first).to_be_visible()
    labels = table.locator("[data-test=product-label]")
    expect(labels.first).to_be_visible()
    names = labels.locator(".name").all_inner_texts()
    assert names
    assert all(n.strip() and not n.startswith("#") for n in names), names
    # the barcode line under the name: a 13-digit EAN (or an in-store code) for demo products
    details = labels.locator(".detail").all_inner_texts()
    assert details
    assert any(re.search(r"\d{8,13}", d) for d in details), details
    assert per_product == []


def _confirm(page: Page) -> None:
    box = page.locator(".el-message-box")
    expect(box).to_be_visible()
    box.locator(
        ".el-message-box__btns .el-button--primary, .el-message-box__btns .el-button--danger"
    ).click()
    expect(box).to_be_hidden()


def test_purchase_order_drafted_from_reorder_suggestions_and_received_updates_stock(
    page: Page,
) -> None:
    login(page, "superadmin")
    page.goto("/purchasing/reorder")
    table = page.locator("[data-test=reorder-table]")
    # The demo leaves the first store's suggestions standing; two weeks of safety stock asks
    # for more of them.
    rows = table.locator(".el-table__body-wrapper .el-table__row")
    expect(rows.first).to_be_visible()
    before = rows.count()
    page.locator("[data-test=reorder-safety] input").fill("14")
    page.locator("[data-test=reorder-recalculate]").click()
    expect(rows.nth(before)).to_be_visible()
    first = rows.first
    # the product's name (its label's second line is spec and barcode)
    product = first.locator("td").nth(1).locator("[data-test=product-label] .name").inner_text()
    product = product.strip()
    supplier = first.locator("td").nth(2).inner_text().strip()
    on_hand = _first_int(first.locator("td").nth(3).inner_text())
    store_id = re.search(r"store_id=(\d+)", page.url)
    create = page.locator("[data-test=reorder-create]")
    expect(create).to_be_enabled()
    create.click()
    _confirm(page)

    expect(page).to_have_url(re.compile(r"/purchasing/orders\?.*status=draft"))
    store = store_id.group(1) if store_id else re.search(r"store_id=(\d+)", page.url).group(1)  # type: ignore[union-attr]
    orders = page.locator("[data-test=po-table]")
    expect(orders.locator(".el-table__row").first).to_be_visible()
    drawer = page.locator("[data-test=po-drawer]")
    line = drawer.locator("[data-test=po-lines] .el-table__row", has_text=product)
    # One draft per supplier: open the one of this suggestion's supplier.
    orders.locator(".el-table__row", has_text=supplier).first.locator("[data-test=po-open]").click()
    expect(drawer.locator("[data-test=po-drawer-status]")).to_have_text("草稿")
    expect(line).to_have_count(1)
    ordered = _first_int(line.locator("td").nth(2).inner_text())
    assert ordered > 0
    # A draft offers submit and cancel, never receive or close.
    actions = drawer.locator("[data-test=po-actions]")
    expect(actions.locator("[data-test=po-receive]")).to_have_count(0)
    expect(actions.locator("[data-test=po-close]")).to_have_count(0)

    actions.locator("[data-test=po-submit]").click()
    _confirm(page)
    expect(drawer.locator("[data-test=po-drawer-status]")).to_have_text("已提交")
    actions.locator("[data-test=po-fill-all]").click()
    actions.locator("[data-test=po-receive]").click()
    _confirm(page)
    expect(drawer.locator("[data-test=po-drawer-status]")).to_have_text("已到货")
    expect(actions.locator("[data-test=po-cancel]")).to_have_count(0)
    expect(actions.locator("[data-test=po-close]")).to_be_visible()

    # Two demo products may share a name (a single and a case): match the received one by
    # its new balance, in the stock list and in the ledger.
    expected = on_hand + ordered
    page.goto(f"/inventory/stock?store_id={store}")
    page.locator("[data-test=stock-search]").fill(product)
    page.locator("[data-test=stock-search]").press("Enter")
    rows = page.locator("[data-test=stock-table] .el-table__row", has_text=product)
    qty = rows.locator("[data-test=stock-qty]", has_text=re.compile(rf"^{expected}$"))
    expect(qty.first).to_be_visible()

    page.goto(f"/inventory/ledger?store_id={store}")
    receipt = page.locator("[data-test=ledger-table] .el-table__row", has_text=product).filter(
        has_text="采购入库"
    )
    expect(receipt.filter(has_text=f"+{ordered}").first).to_contain_text(str(expected))


def test_alert_route_created_tested_edited_and_deleted(page: Page) -> None:
    login(page, "superadmin")
    page.goto("/inventory/alert-routes")
    name = f"店长通知 {uuid.uuid4().hex[:4]}"
    page.locator("[data-test=route-create]").click()
    dialog = page.locator(".el-dialog[data-test=route-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-test=route-save]").click()
    expect(dialog).to_contain_text("不能为空")  # nothing is sent until the form is complete
    dialog.locator("[data-test=route-name]").fill(name)
    dialog.locator("[data-test=route-role]").click()
    page.locator(".el-select-dropdown:visible .el-select-dropdown__item").first.click()
    dialog.locator("[data-test=route-save]").click()
    expect(dialog).to_be_hidden()

    row = page.locator("[data-test=routes-table] .el-table__row", has_text=name)
    expect(row).to_be_visible()
    expect(row).to_contain_text("全部门店")
    expect(row.locator("[data-test=route-recipients]")).to_contain_text("站内信")

    row.locator("[data-test=route-test]").click()
    _confirm(page)
    expect(page.locator(".el-message--success", has_text="测试已发送")).to_be_visible()

    row.locator("[data-test=route-edit]").click()
    expect(dialog).to_be_visible()
    dialog.locator("[data-test=route-name]").fill(f"{name} 改")
    dialog.locator("[data-test=route-save]").click()
    expect(dialog).to_be_hidden()
    row = page.locator("[data-test=routes-table] .el-table__row", has_text=f"{name} 改")
    expect(row).to_be_visible()

    row.locator("[data-test=route-delete]").click()
    _confirm(page)
    expect(row).to_have_count(0)
