"""The statistics, the stock analysis and a basket run's rules as xlsx: the same figures as the
JSON routes, money in yuan to the fen, and the same 404s and 422s."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession

from tests.analytics.test_baskets import _all_rules, _headers, _run, build_orders
from tests.analytics.test_statistics import build_chain, reader, utc
from tests.analytics.test_stock import Ledger

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def sheets(r: httpx.Response) -> dict[str, list[tuple[Any, ...]]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == XLSX
    wb = load_workbook(io.BytesIO(r.content), read_only=True)
    return {ws.title: [tuple(row) for row in ws.iter_rows(values_only=True)] for ws in wb}


async def test_sales_and_stock_as_xlsx(client: httpx.AsyncClient, session: AsyncSession) -> None:
    chain = await build_chain(session)
    h = await reader(session, chain)
    window = {"start": "2025-03-31", "end": "2025-04-01"}
    book = sheets(await client.get("/api/v1/analytics/sales/export", params=window, headers=h))
    assert list(book) == [
        "本期", "上期", "去年同期", "热销商品", "滞销商品", "品类构成", "支付方式", "时段分布",
    ]  # fmt: skip
    head, *rows = book["本期"]
    assert head[:6] == ("周期", "开始", "结束", "订单数", "销售额(元)", "退款笔数")
    # The JSON route's figures for these days (test_statistics), in yuan.
    assert rows[0][0] == "2025-03-31"
    assert rows[0][3:] == (2, 10.5, 0, 0, 10.5, 5.25, 3, 1.5, 1, 10.5)
    assert rows[1][3:] == (2, 22, 0, 0, 22, 11, 5, 2.5, 1, 11.5)
    assert rows[2][0] == "合计"
    assert rows[2][3:] == (4, 32.5, 0, 0, 32.5, 8.13, 8, 2, 1, 22)
    assert book["去年同期"][2][3:5] == (1, 14)  # 1 April 2024

    led = Ledger(session)
    chain.cola.cost_fen = 123
    await led.move(chain.shanghai, chain.cola, "purchase_receipt", 10, utc(2025, 3, 30, 2))
    await led.move(chain.shanghai, chain.cola, "sale", -3, utc(2025, 4, 1, 2))
    book = sheets(await client.get("/api/v1/analytics/stock/export", params=window, headers=h))
    assert list(book) == ["按门店", "按分类"]
    assert book["按门店"][0][:4] == ("门店ID", "名称", "商品数", "期初")
    # 10 on hand, 3 sold in two days: sell-through 30.00%, (10 + 7) / 2 / 1.5 = 5.7 days.
    expected = (1, 10, 0, 3, 0, 0, 7, 8.61, 30, 5.7)
    assert book["按门店"][1] == (chain.shanghai.id, "人民广场店", *expected)
    assert book["按门店"][-1] == (None, "合计", *expected)
    assert book["按分类"][1] == (chain.drinks.id, "饮料", *expected)

    r = await client.get(
        "/api/v1/analytics/stock/export",
        params={**window, "store_id": chain.other.id},
        headers=h,
    )
    assert r.status_code == 404, r.text
    r = await client.get(
        "/api/v1/analytics/sales/export",
        params={"start": "2025-04-02", "end": "2025-04-01"},
        headers=h,
    )
    assert r.status_code == 422, r.text


def _yuan(fen: int) -> float | int:
    """A fen amount as the workbook's cell reads back (yuan; whole yuan come back as int)."""
    value = fen / 100
    return int(value) if value == int(value) else value


async def test_the_sales_export_holds_the_windows_breakdowns_as_the_json_routes_give_them(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    chain = await build_chain(session)
    h = await reader(session, chain)
    window = {"start": "2025-03-31", "end": "2025-04-01"}
    book = sheets(await client.get("/api/v1/analytics/sales/export", params=window, headers=h))

    async def json_of(path: str, **extra: Any) -> list[dict[str, Any]]:
        r = await client.get(f"/api/v1/analytics/{path}", params={**window, **extra}, headers=h)
        assert r.status_code == 200, r.text
        rows: list[dict[str, Any]] = r.json()
        return rows

    for sheet, order in (("热销商品", "hot"), ("滞销商品", "slow")):
        head, *rows = book[sheet]
        assert head == (
            "排名", "商品ID", "名称", "规格", "订单数", "件数", "销售额(元)", "退货件数",
            "退款额(元)", "净销售额(元)",
        )  # fmt: skip
        ranked = await json_of("products", order=order, limit=20)
        assert ranked, "the window has sales"
        assert rows == [
            (i, p["product_id"], p["name"], p["spec"] or None, p["orders"], p["quantity"],
             _yuan(p["sales_fen"]), p["refund_qty"], _yuan(p["refunds_fen"]),
             _yuan(p["net_sales_fen"]))
            for i, p in enumerate(ranked, start=1)
        ]  # fmt: skip
    head, *rows = book["品类构成"]
    assert head == ("分类ID", "名称", "件数", "销售额(元)", "退款额(元)", "净销售额(元)", "占比(%)")
    mix = await json_of("categories")
    assert [r[0] for r in rows] == [c["category_id"] for c in mix]
    assert sum(r[6] for r in rows) == pytest.approx(100)
    assert [r[5] for r in rows] == [_yuan(c["net_sales_fen"]) for c in mix]
    head, *rows = book["支付方式"]
    methods = await json_of("payment-methods")
    assert len(rows) == len(methods) > 0
    assert [r[1:] for r in rows] == [(m["orders"], _yuan(m["sales_fen"])) for m in methods]
    head, *rows = book["时段分布"]
    assert head == ("星期", "小时", "订单数", "销售额(元)")
    heat = await json_of("heatmap")
    assert len(rows) == len(heat)
    busy = [c for c in heat if c["orders"]]
    assert busy
    weekday = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
    for c in busy:
        assert (weekday[c["weekday"] - 1], c["hour"], c["orders"], _yuan(c["sales_fen"])) in rows
    # The total order count over the grid is the window's.
    assert sum(r[2] for r in rows) == book["本期"][-1][3]


async def test_every_analytics_export_speaks_the_consoles_language(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    chain = await build_chain(session)
    h = {**await reader(session, chain), "Accept-Language": "en"}
    window = {"start": "2025-03-31", "end": "2025-04-01"}
    book = sheets(await client.get("/api/v1/analytics/sales/export", params=window, headers=h))
    assert list(book) == [
        "This period", "Previous period", "Same period last year", "Best sellers",
        "Slow movers", "Category mix", "Payment methods", "Hour x weekday",
    ]  # fmt: skip
    assert book["This period"][0][:5] == ("Period", "Start", "End", "Orders", "Sales (CNY)")
    assert book["This period"][-1][0] == "Total"
    assert {r[0] for r in book["Payment methods"][1:]} <= {
        "Manual", "WeChat Pay", "Alipay", "Bank card", "Unknown",
    }  # fmt: skip
    assert book["Hour x weekday"][1][0] == "Mon"
    book = sheets(await client.get("/api/v1/analytics/members/export", params=window, headers=h))
    assert list(book) == ["This period", "Previous period"]
    assert book["This period"][0][3:5] == ("Orders", "Sales (CNY)")
    book = sheets(await client.get("/api/v1/analytics/stock/export", params=window, headers=h))
    assert list(book) == ["By store", "By category"]
    assert book["By store"][0][:3] == ("Store ID", "Name", "Products")
    # Chinese otherwise, whatever else the header names.
    zh = {**h, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
    book = sheets(await client.get("/api/v1/analytics/stock/export", params=window, headers=zh))
    assert list(book) == ["按门店", "按分类"]


async def test_basket_rules_as_xlsx(
    client: httpx.AsyncClient, session: AsyncSession, jobs: Any
) -> None:
    store, _other, _products, _expected = await build_orders(session)
    h = await _headers(session)
    r = await _run(
        client, h, store_id=store.id, start="2025-04-01", end="2025-04-07",
        min_support=0.01, min_confidence=0.01, max_len=4,
    )  # fmt: skip
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    rules = await _all_rules(client, h, run_id)
    assert len(rules) > 200  # more than one page
    book = sheets(
        await client.get(f"/api/v1/analytics/basket-runs/{run_id}/rules/export", headers=h)
    )
    head, *rows = book["关联规则"]
    assert head[:3] == ("前项", "后项", "商品数")
    english = sheets(
        await client.get(
            f"/api/v1/analytics/basket-runs/{run_id}/rules/export",
            headers={**h, "Accept-Language": "en"},
        )
    )
    assert english["Association rules"][0][:3] == ("Antecedent", "Consequent", "Products")
    assert english["Association rules"][1:] == book["关联规则"][1:]
    assert len(rows) == len(rules)
    first = rules[0]
    assert rows[0][:6] == (
        " + ".join(f"{p['name']} {p['spec']}".strip() for p in first["antecedent"]),
        " + ".join(f"{p['name']} {p['spec']}".strip() for p in first["consequent"]),
        first["size"],
        first["count"],
        first["antecedent_count"],
        first["consequent_count"],
    )
    # A spreadsheet keeps 15 significant digits of a double.
    expected = (first["support"], first["confidence"], first["lift"])
    assert rows[0][6:] == pytest.approx(expected, rel=1e-14)
    r = await client.get("/api/v1/analytics/basket-runs/999999/rules/export", headers=h)
    assert r.status_code == 404, r.text
