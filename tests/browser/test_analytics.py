"""The sales statistics page and the overview's today panel in a real browser against the real
server (the demo chain): the figures shown are the API's, to the fen, in Chinese."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from .conftest import LOGINS
from .test_console import login

pytestmark = pytest.mark.browser


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _api(server_url: str, path: str, params: dict[str, str]) -> dict[str, object]:
    with httpx.Client(base_url=f"{server_url}/api/v1") as client:
        tokens = client.post(
            "/auth/login", json={"username": "admin", "password": LOGINS["admin"]}
        ).json()
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        r = client.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def test_statistics_page_shows_the_apis_figures(page: Page, server_url: str) -> None:
    login(page, "admin")
    page.locator("[data-test=side-menu]").get_by_text("销售统计").click()
    expect(page.locator(".page-head h1")).to_have_text("销售统计")
    rows = page.locator("[data-test=analytics-periods] .el-table__row")
    expect(rows).to_have_count(14)
    inputs = page.locator(".filters .el-range-input")
    start, end = inputs.nth(0).input_value(), inputs.nth(1).input_value()
    body = _api(server_url, "/analytics/sales", {"start": start, "end": end})
    total = body["total"]
    assert isinstance(total, dict)
    current = total["current"]
    net = page.locator("[data-test=analytics-total-net_sales_fen] .value")
    expect(net).to_have_text(_yuan(current["net_sales_fen"]))
    expect(page.locator("[data-test=analytics-total-orders] .value")).to_have_text(
        str(current["orders"])
    )
    expect(page.locator("[data-test=analytics-total-net_sales_fen]")).to_contain_text("环比")

    page.locator("[data-test=analytics-granularity]").get_by_text("按月").click()
    expect(rows.first).to_contain_text(start[:7])


def _get(server_url: str, path: str, params: dict[str, str]) -> Any:
    return _api(server_url, path, params)


def test_statistics_breakdowns_are_the_apis_and_export(page: Page, server_url: str) -> None:
    """Slow movers beside the best sellers, the category and payment mixes and the hour x
    weekday heat map of the window; the figures and the breakdowns export as xlsx."""
    login(page, "admin")
    page.locator("[data-test=side-menu]").get_by_text("销售统计").click()
    expect(page.locator("[data-test=analytics-periods] .el-table__row")).to_have_count(14)
    inputs = page.locator(".filters .el-range-input")
    window = {"start": inputs.nth(0).input_value(), "end": inputs.nth(1).input_value()}

    slow = _get(server_url, "/analytics/products", {**window, "order": "slow", "limit": "10"})
    slow_rows = page.locator("[data-test=analytics-slow] .el-table__row")
    expect(slow_rows).to_have_count(len(slow))
    expect(slow_rows.first).to_contain_text(slow[0]["name"])
    expect(page.get_by_role("heading", name="滞销商品")).to_be_visible()

    mix = _get(server_url, "/analytics/categories", window)
    cat_rows = page.locator("[data-test=analytics-categories] .el-table__row")
    expect(cat_rows).to_have_count(len(mix))
    top = mix[0]
    share = f"{top['share_bp'] // 100}.{top['share_bp'] % 100:02d}%"
    expect(cat_rows.first).to_contain_text(_yuan(top["net_sales_fen"]))
    expect(cat_rows.first).to_contain_text(share)

    methods = _get(server_url, "/analytics/payment-methods", window)
    method_rows = page.locator("[data-test=analytics-methods] .el-table__row")
    expect(method_rows).to_have_count(len(methods))
    names = {"wechat": "微信支付", "alipay": "支付宝", "card": "银行卡", "manual": "手工记账"}
    first = methods[0]
    expect(method_rows.first).to_contain_text(_yuan(first["sales_fen"]))
    if first["payment_method"] in names:
        expect(method_rows.first).to_contain_text(names[first["payment_method"]])

    heat = _get(server_url, "/analytics/heatmap", window)
    assert len(heat) == 168
    assert any(c["orders"] for c in heat)
    expect(page.locator("[data-test=analytics-heatmap] canvas").first).to_be_visible()

    with page.expect_download() as download:
        page.locator("[data-test=analytics-export]").click()
    assert download.value.suggested_filename == f"sales-{window['start']}-{window['end']}-day.xlsx"
    book = load_workbook(io.BytesIO(download.value.path().read_bytes()), read_only=True)
    assert book.sheetnames == [
        "本期", "上期", "去年同期", "热销商品", "滞销商品", "品类构成", "支付方式", "时段分布",
    ]  # fmt: skip
    best = list(book["热销商品"].iter_rows(min_row=2, values_only=True))
    hot = _get(server_url, "/analytics/products", {**window, "order": "hot", "limit": "20"})
    assert [r[1] for r in best] == [p["product_id"] for p in hot]

    # one city: the cards are that city's figures
    page.locator("[data-test=analytics-city]").click()
    page.locator(".el-select-dropdown__item:visible").get_by_text("杭州", exact=True).click()
    body = _get(server_url, "/analytics/sales", {**window, "city": "杭州"})
    net = body["total"]["current"]["net_sales_fen"]
    card = page.locator("[data-test=analytics-total-net_sales_fen] .value")
    expect(card).to_have_text(_yuan(net))

    page.locator("[data-test=side-menu]").get_by_text("库存分析").click()
    expect(page.locator(".page-head h1")).to_have_text("库存分析")
    with page.expect_download() as stock:
        page.locator("[data-test=stock-analysis-export]").click()
    assert stock.value.suggested_filename.endswith(".xlsx")


def test_members_page_shows_the_apis_figures(page: Page, server_url: str) -> None:
    login(page, "admin")
    page.locator("[data-test=side-menu]").get_by_text("会员分析").click()
    expect(page.locator(".page-head h1")).to_have_text("会员与非会员")
    rows = page.locator("[data-test=member-analytics-periods] .el-table__row")
    expect(rows).to_have_count(14)
    inputs = page.locator(".filters .el-range-input")
    start, end = inputs.nth(0).input_value(), inputs.nth(1).input_value()
    body = _api(server_url, "/analytics/members", {"start": start, "end": end})
    total = body["total"]
    assert isinstance(total, dict)
    current = total["current"]
    cards = "[data-test=member-analytics-total-{}] .value"
    expect(page.locator(cards.format("member_sales_fen"))).to_have_text(
        _yuan(current["member_sales_fen"])
    )
    expect(page.locator(cards.format("guest_orders"))).to_have_text(str(current["guest_orders"]))
    with page.expect_download() as download:
        page.locator("[data-test=member-analytics-export]").click()
    assert download.value.suggested_filename == f"members-{start}-{end}-day.xlsx"


def test_overview_shows_today_so_far(page: Page, server_url: str) -> None:
    login(page, "admin")
    page.goto("/")
    panel = page.locator("[data-test=analytics-today]")
    expect(panel).to_contain_text("今日实时")
    today = _api(server_url, "/analytics/today", {})["figures"]
    assert isinstance(today, dict)
    expect(panel.locator("[data-test=today-orders]")).to_have_text(str(today["orders"]))
    expect(panel.locator("[data-test=today-sales]")).to_have_text(_yuan(today["sales_fen"]))
