"""The catalog console in a real browser against the real server: pinyin search, creating a
product with a barcode, a bad barcode's field error, the import report, and a bulk price
adjustment with its preview and confirmation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import LOGINS
from .test_console import login

pytestmark = pytest.mark.browser


def ean13(body12: str) -> str:
    """An EAN-13 with its GS1 check digit."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def unique_ean13() -> str:
    return ean13("29" + str(uuid.uuid4().int)[:10])


def wrong_check_digit(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


@contextmanager
def api_client(server_url: str) -> Iterator[httpx.Client]:
    """The console API as the super admin."""
    with httpx.Client(base_url=f"{server_url}/api/v1") as client:
        tokens = client.post(
            "/auth/login", json={"username": "superadmin", "password": LOGINS["superadmin"]}
        ).json()
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        yield client


def search(page: Page, text: str) -> None:
    """Searches once the first page has arrived (so the search is the last answer shown)."""
    expect(page.locator("[data-test=products-table] .el-table__row").first).to_be_visible()
    page.locator("[data-test=product-search]").fill(text)
    page.locator("[data-test=product-search-submit]").click()


def test_search_by_pinyin_initials_finds_coca_cola(page: Page) -> None:
    login(page, "admin")
    page.locator("[data-test=menu-catalog-products]").click()
    table = page.locator("[data-test=products-table]")
    expect(table.locator(".el-table__row").first).to_be_visible()
    search(page, "kkkl")
    expect(table).to_contain_text("可口可乐")
    names = table.locator(".el-table__row .name").all_inner_texts()
    assert names
    assert any("可口可乐" in n for n in names), names


def test_create_a_product_with_a_barcode_and_find_it(page: Page) -> None:
    code = unique_ean13()
    name = f"测试矿泉水 {code[-5:]}"
    login(page, "admin")
    page.goto("/products")
    page.locator("[data-test=product-create]").click()
    dialog = page.locator(".el-dialog[data-test=product-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-test=product-name]").fill(name)
    dialog.locator("[data-test=product-barcodes]").fill(code)
    dialog.locator("[data-test=product-price-input]").fill("2.5")
    dialog.locator("[data-test=product-member-price-input]").fill("2.30")
    dialog.locator("[data-test=product-save]").click()
    # Saved: the dialog stays open in edit mode for images and store listing.
    expect(dialog.locator(".el-dialog__title")).to_have_text("编辑商品")
    dialog.locator("[data-test=product-close]").click()
    expect(dialog).to_be_hidden()
    search(page, code)
    row = page.locator("[data-test=products-table] .el-table__row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(name)
    expect(row).to_contain_text(code)
    expect(row.locator("[data-test=product-price]")).to_have_text("2.50")


def test_a_bad_barcode_is_explained_under_the_field(page: Page) -> None:
    bad = wrong_check_digit(unique_ean13())
    login(page, "admin")
    page.goto("/products")
    page.locator("[data-test=product-create]").click()
    dialog = page.locator(".el-dialog[data-test=product-dialog]")
    dialog.locator("[data-test=product-name]").fill("校验位错误的商品")
    dialog.locator("[data-test=product-barcodes]").fill(bad)
    dialog.locator("[data-test=product-price-input]").fill("3")
    dialog.locator("[data-test=product-save]").click()
    error = dialog.locator(".el-form-item__error")
    expect(error).to_contain_text(bad)
    expect(error).to_contain_text("校验位不正确")
    # Nothing was created, and the dialog is still in create mode.
    expect(dialog.locator(".el-dialog__title")).to_have_text("新建商品")


def test_import_a_small_csv_and_read_the_report(page: Page, tmp_path: Path) -> None:
    good = unique_ean13()
    bad = wrong_check_digit(unique_ean13())
    csv = tmp_path / "products.csv"
    csv.write_text(
        "条码,名称,售价(元)\n"
        f"{good},导入测试薯片,6.50\n"
        f"{bad},校验位错的薯片,6.50\n"
        f"{unique_ean13()},三位小数的薯片,3.505\n",
        encoding="utf-8",
    )
    login(page, "admin")
    page.goto("/products/import")
    page.locator("[data-test=import-file] input[type=file]").set_input_files(str(csv))
    page.locator("[data-test=import-submit]").click()
    report = page.locator("[data-test=import-report]")
    expect(report.locator("[data-test=import-status]")).to_contain_text("没有导入任何商品")
    errors = report.locator("[data-test=import-errors] .el-table__row")
    expect(errors).to_have_count(2)
    expect(errors.nth(0)).to_contain_text("3")
    expect(errors.nth(0)).to_contain_text("条码")
    expect(errors.nth(0)).to_contain_text("校验位不正确")
    expect(errors.nth(0)).to_contain_text(bad)
    expect(errors.nth(1)).to_contain_text("4")
    expect(errors.nth(1)).to_contain_text("售价(元)")
    expect(errors.nth(1)).to_contain_text("3.505")

    # Only the good rows this time: the first row is created, the others are skipped.
    page.locator("[data-test=import-again]").click()
    page.locator("[data-test=import-file] input[type=file]").set_input_files(str(csv))
    page.locator("[data-test=import-mode-good_rows_only]").click()
    page.locator("[data-test=import-submit]").click()
    expect(report.locator("[data-test=import-status]")).to_contain_text("已导入正确的行")
    expect(report.locator("[data-test=import-created]")).to_contain_text("1")
    page.goto("/products")
    search(page, good)
    row = page.locator("[data-test=products-table] .el-table__row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("导入测试薯片")


def test_bulk_price_adjustment_with_preview_and_confirmation(page: Page, server_url: str) -> None:
    tag = uuid.uuid4().hex[:6]
    created: list[dict[str, Any]] = []
    with api_client(server_url) as api:
        for i, price in enumerate((1000, 2050)):
            res = api.post(
                "/products",
                json={
                    "name": f"批量调价{tag} {i}",
                    "price_fen": price,
                    "barcodes": [unique_ean13()],
                },
            )
            assert res.status_code == 201, res.text
            created.append(res.json())

    login(page, "admin")
    page.goto("/products")
    search(page, f"批量调价{tag}")
    table = page.locator("[data-test=products-table]")
    expect(table.locator(".el-table__row")).to_have_count(2)
    table.locator(".el-table__header .el-checkbox").click()
    expect(page.locator("[data-test=product-selected]")).to_contain_text("2")

    page.locator("[data-test=product-bulk]").click()
    dialog = page.locator(".el-dialog[data-test=bulk-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-test=bulk-delta]").fill("-10")
    dialog.locator("[data-test=bulk-preview-submit]").click()
    preview = dialog.locator("[data-test=bulk-preview]")
    expect(preview.locator("[data-test=bulk-summary]")).to_contain_text("2")
    rows = preview.locator("[data-test=bulk-preview-table] .el-table__row")
    expect(rows).to_have_count(2)
    expect(preview).to_contain_text("10.00")
    expect(preview).to_contain_text("9.00")
    expect(preview).to_contain_text("20.50")
    expect(preview).to_contain_text("18.45")

    dialog.locator("[data-test=bulk-apply]").click()
    box = page.locator(".el-message-box")
    expect(box).to_contain_text("2")
    box.get_by_role("button", name="确认修改").click()
    expect(dialog).to_be_hidden()
    prices = table.locator("[data-test=product-price]")
    expect(prices).to_have_count(2)
    expect(table).to_contain_text("9.00")
    expect(table).to_contain_text("18.45")

    with api_client(server_url) as api:
        after = {p["id"]: api.get(f"/products/{p['id']}").json()["price_fen"] for p in created}
    assert sorted(after.values()) == [900, 1845]


def test_filter_products_by_stock_state(page: Page, server_url: str) -> None:
    """The stock-state filter asks the API for the same products it would list itself."""
    with api_client(server_url) as api:
        low = api.get("/products", params={"stock_state": "low", "size": 1}).json()["total"]
        out = api.get("/products", params={"stock_state": "out", "size": 1}).json()["total"]
        everything = api.get("/products", params={"size": 1}).json()["total"]
    assert 0 < low < everything  # the demo chain has some low stock
    login(page, "superadmin")
    page.goto("/products")
    table = page.locator("[data-test=products-table]")
    expect(table.locator(".el-table__row").first).to_be_visible()
    total = page.locator(".el-pagination__total")
    expect(total).to_contain_text(str(everything))
    for label, expected in (("库存偏低", low), ("缺货", out)):
        page.locator("[data-test=product-filter-stock-state]").click()
        page.locator(
            ".el-select-dropdown:visible .el-select-dropdown__item", has_text=label
        ).click()
        page.locator("[data-test=product-search-submit]").click()
        expect(total).to_contain_text(str(expected))


def _store_ids_of(server_url: str, username: str) -> list[int]:
    """The active stores a user works in, as the API shows them to that user."""
    with httpx.Client(base_url=f"{server_url}/api/v1") as client:
        tokens = client.post(
            "/auth/login", json={"username": username, "password": LOGINS[username]}
        ).json()
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        stores = client.get("/stores", params={"size": 100}).json()["items"]
    return sorted(s["id"] for s in stores if s["status"] == "active")


def test_a_new_product_is_sold_in_the_users_stores_and_bulk_unlisted(
    page: Page, server_url: str
) -> None:
    code = unique_ean13()
    name = f"上架测试凉茶 {code[-5:]}"
    mine = _store_ids_of(server_url, "admin")
    assert mine
    login(page, "admin")
    page.goto("/products")
    page.locator("[data-test=product-create]").click()
    dialog = page.locator(".el-dialog[data-test=product-dialog]")
    expect(dialog).to_be_visible()
    # The store choice is on the form, every store of the user's already chosen.
    stores = dialog.locator("[data-test=product-stores]")
    expect(stores.locator(".el-tag").first).to_be_visible()
    expect(dialog).to_contain_text("保存后即在这些门店上架")
    dialog.locator("[data-test=product-name]").fill(name)
    dialog.locator("[data-test=product-spec]").fill("310ml罐装")
    dialog.locator("[data-test=product-barcodes]").fill(code)
    dialog.locator("[data-test=product-price-input]").fill("4.5")
    dialog.locator("[data-test=product-save]").click()
    expect(dialog.locator(".el-dialog__title")).to_have_text("编辑商品")
    dialog.locator("[data-test=product-close]").click()
    expect(dialog).to_be_hidden()

    with api_client(server_url) as api:
        product = api.get("/products/by-barcode", params={"code": code}).json()
        listed = api.get(f"/products/{product['id']}/stores").json()
    assert sorted(x["store_id"] for x in listed if x["is_listed"]) == mine

    # Bulk edit: remove it from every store of the user's.
    search(page, code)
    table = page.locator("[data-test=products-table]")
    expect(table.locator(".el-table__row")).to_have_count(1)
    expect(table.locator("[data-test=product-label]")).to_contain_text("310ml罐装")
    table.locator(".el-table__header .el-checkbox").click()
    page.locator("[data-test=product-bulk]").click()
    bulk = page.locator(".el-dialog[data-test=bulk-dialog]")
    expect(bulk).to_be_visible()
    bulk.locator("[data-test=bulk-op]").click()
    page.locator(".el-select-dropdown__item[data-test=bulk-op-set_listing]").click()
    bulk.locator("[data-test=bulk-unlist]").click()
    bulk.locator("[data-test=bulk-preview-submit]").click()
    rows = bulk.locator("[data-test=bulk-preview-table] .el-table__row")
    expect(rows).to_have_count(len(mine))
    expect(rows.first).to_contain_text("已上架")
    expect(rows.first).to_contain_text("未上架")
    bulk.locator("[data-test=bulk-apply]").click()
    page.locator(".el-message-box").get_by_role("button", name="确认修改").click()
    expect(bulk).to_be_hidden()
    with api_client(server_url) as api:
        listed = api.get(f"/products/{product['id']}/stores").json()
    assert [x["store_id"] for x in listed if x["is_listed"]] == []


def test_the_import_dialog_chooses_the_stores_new_products_are_listed_in(page: Page) -> None:
    login(page, "admin")
    page.goto("/products/import")
    stores = page.locator("[data-test=import-stores]")
    expect(stores.locator(".el-tag").first).to_be_visible()
    expect(page.locator("body")).to_contain_text("新商品立即在这些门店上架销售")
