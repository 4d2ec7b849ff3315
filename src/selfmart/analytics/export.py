"""The statistics (with the window's breakdowns), the stock analysis and a basket run's rules as
xlsx workbooks, through kit.tabular so that stored text cannot break a file; money in yuan with
two decimals (exact, from the fen). Sheet titles and headers are in the console's language
(`lang` "zh" or "en", sent as Accept-Language), as the settlement exports are."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import baskets
from selfmart.iam.actor import Actor
from selfmart.kit.money import yuan_decimal
from selfmart.kit.pagination import PageParams
from selfmart.kit.searchlog import Label, in_language
from selfmart.kit.tabular import xlsx_cells

#: The most rules one export holds (the strongest first, as the console sorts them).
MAX_RULES = 50_000

#: a label in Chinese and in English
#: a figure's column: its label, its key in the JSON body, whether it is money (fen)
Column = tuple[Label, str, bool]

SALES_COLUMNS: list[Column] = [
    (("订单数", "Orders"), "orders", False),
    (("销售额(元)", "Sales (CNY)"), "sales_fen", True),
    (("退款笔数", "Refunds"), "refunds", False),
    (("退款额(元)", "Refunded (CNY)"), "refunds_fen", True),
    (("净销售额(元)", "Net sales (CNY)"), "net_sales_fen", True),
    (("客单价(元)", "Average order value (CNY)"), "avg_order_value_fen", True),
    (("件数", "Items"), "items", False),
    (("件单数", "Items per order"), "items_per_order", False),
    (("付款会员数", "Paying members"), "paying_members", False),
    (("会员销售额(元)", "Member sales (CNY)"), "member_sales_fen", True),
]
MEMBER_COLUMNS: list[Column] = [
    (("订单数", "Orders"), "orders", False),
    (("销售额(元)", "Sales (CNY)"), "sales_fen", True),
    (("会员订单数", "Member orders"), "member_orders", False),
    (("会员销售额(元)", "Member sales (CNY)"), "member_sales_fen", True),
    (("非会员订单数", "Guest orders"), "guest_orders", False),
    (("非会员销售额(元)", "Guest sales (CNY)"), "guest_sales_fen", True),
    (("新会员数", "New members"), "new_members", False),
    (("付款会员数", "Paying members"), "paying_members", False),
    (("复购会员数", "Repeat members"), "repeat_members", False),
    (("复购率", "Repurchase rate"), "repurchase_rate", False),
]
STOCK_COLUMNS: list[Column] = [
    (("商品数", "Products"), "products", False),
    (("期初", "Opening"), "opening_qty", False),
    (("入库", "Received"), "received_qty", False),
    (("售出", "Sold"), "sold_qty", False),
    (("损耗", "Shrinkage"), "shrinkage_qty", False),
    (("损耗成本(元)", "Shrinkage at cost (CNY)"), "shrinkage_fen", True),
    (("期末", "Closing"), "closing_qty", False),
    (("库存成本金额(元)", "Stock value at cost (CNY)"), "stock_value_fen", True),
    (("售罄率(%)", "Sell-through (%)"), "sell_through_bp", False),
    (("周转天数", "Turnover days"), "turnover_days", False),
]
RANK_COLUMNS: list[Column] = [
    (("订单数", "Orders"), "orders", False),
    (("件数", "Quantity"), "quantity", False),
    (("销售额(元)", "Sales (CNY)"), "sales_fen", True),
    (("退货件数", "Returned quantity"), "refund_qty", False),
    (("退款额(元)", "Refunded (CNY)"), "refunds_fen", True),
    (("净销售额(元)", "Net sales (CNY)"), "net_sales_fen", True),
]
CATEGORY_COLUMNS: list[Column] = [
    (("件数", "Quantity"), "quantity", False),
    (("销售额(元)", "Sales (CNY)"), "sales_fen", True),
    (("退款额(元)", "Refunded (CNY)"), "refunds_fen", True),
    (("净销售额(元)", "Net sales (CNY)"), "net_sales_fen", True),
    (("占比(%)", "Share (%)"), "share_bp", False),
]
METHOD_COLUMNS: list[Column] = [
    (("订单数", "Orders"), "orders", False),
    (("销售额(元)", "Sales (CNY)"), "sales_fen", True),
]
WORDS: dict[str, Label] = {
    "current": ("本期", "This period"),
    "previous": ("上期", "Previous period"),
    "last_year": ("去年同期", "Same period last year"),
    "period": ("周期", "Period"),
    "start": ("开始", "Start"),
    "end": ("结束", "End"),
    "total": ("合计", "Total"),
    "by_store": ("按门店", "By store"),
    "by_category": ("按分类", "By category"),
    "store_id": ("门店ID", "Store ID"),
    "category_id": ("分类ID", "Category ID"),
    "product_id": ("商品ID", "Product ID"),
    "name": ("名称", "Name"),
    "spec": ("规格", "Spec"),
    "rank": ("排名", "Rank"),
    "uncategorised": ("未分类", "Uncategorised"),
    "hot": ("热销商品", "Best sellers"),
    "slow": ("滞销商品", "Slow movers"),
    "categories": ("品类构成", "Category mix"),
    "methods": ("支付方式", "Payment methods"),
    "method": ("支付方式", "Payment method"),
    "heatmap": ("时段分布", "Hour x weekday"),
    "weekday": ("星期", "Weekday"),
    "hour": ("小时", "Hour"),
    "orders": ("订单数", "Orders"),
    "sales": ("销售额(元)", "Sales (CNY)"),
    "rules": ("关联规则", "Association rules"),
}
METHODS: dict[str, Label] = {
    "manual": ("手工记账", "Manual"),
    "wechat": ("微信支付", "WeChat Pay"),
    "alipay": ("支付宝", "Alipay"),
    "card": ("银行卡", "Bank card"),
    "unknown": ("未知", "Unknown"),
}
WEEKDAYS: dict[int, Label] = {
    1: ("周一", "Mon"), 2: ("周二", "Tue"), 3: ("周三", "Wed"), 4: ("周四", "Thu"),
    5: ("周五", "Fri"), 6: ("周六", "Sat"), 7: ("周日", "Sun"),
}  # fmt: skip
RULE_HEADERS: list[Label] = [
    ("前项", "Antecedent"), ("后项", "Consequent"), ("商品数", "Products"),
    ("同时购买篮数", "Baskets with both"), ("前项篮数", "Baskets with antecedent"),
    ("后项篮数", "Baskets with consequent"), ("支持度", "Support"), ("置信度", "Confidence"),
    ("提升度", "Lift"),
]  # fmt: skip


def _word(key: str, lang: str) -> str:
    return in_language(WORDS[key], lang)


def _cell(value: Any, money: bool, key: str = "") -> Any:
    if value is None:
        return None
    if money:
        return yuan_decimal(int(value))
    if key in ("sell_through_bp", "share_bp"):  # basis points as a percentage
        return Decimal(int(value)).scaleb(-2).quantize(Decimal("0.01"))
    return value


def _figures(f: dict[str, Any], columns: Sequence[Column]) -> list[Any]:
    return [_cell(f.get(key), money, key) for _, key, money in columns]


def _headers(columns: Sequence[Column], lang: str) -> list[str]:
    return [in_language(label, lang) for label, _, _ in columns]


def _save(wb: Workbook) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _series_sheets(
    wb: Workbook,
    series: dict[str, Any],
    columns: Sequence[Column],
    parts: Sequence[str],
    lang: str,
) -> None:
    """One sheet per comparison (`parts`: the series' keys), one row per period and a total."""
    for part in parts:
        ws = wb.create_sheet(_word(part, lang))
        head = [_word("period", lang), _word("start", lang), _word("end", lang)]
        ws.append(xlsx_cells(ws, [*head, *_headers(columns, lang)]))
        for p in series["periods"]:
            ws.append(
                xlsx_cells(ws, [p["period"], p["start"], p["end"], *_figures(p[part], columns)])
            )
        total = series["total"]
        ws.append(
            xlsx_cells(
                ws,
                [_word("total", lang), total["start"], total["end"],
                 *_figures(total[part], columns)],
            )
        )  # fmt: skip


def _breakdown_sheets(wb: Workbook, breakdowns: dict[str, Any], lang: str) -> None:
    """The window's best sellers and slow movers, category and payment mix, hour x weekday."""
    for key in ("hot", "slow"):
        ws = wb.create_sheet(_word(key, lang))
        head = [_word(k, lang) for k in ("rank", "product_id", "name", "spec")]
        ws.append(xlsx_cells(ws, [*head, *_headers(RANK_COLUMNS, lang)]))
        for i, r in enumerate(breakdowns[key], start=1):
            ws.append(
                xlsx_cells(
                    ws, [i, r["product_id"], r["name"], r["spec"], *_figures(r, RANK_COLUMNS)]
                )
            )
    ws = wb.create_sheet(_word("categories", lang))
    head = [_word("category_id", lang), _word("name", lang)]
    ws.append(xlsx_cells(ws, [*head, *_headers(CATEGORY_COLUMNS, lang)]))
    for c in breakdowns["categories"]:
        name = c["name"] if c["category_id"] is not None else _word("uncategorised", lang)
        ws.append(xlsx_cells(ws, [c["category_id"], name, *_figures(c, CATEGORY_COLUMNS)]))
    ws = wb.create_sheet(_word("methods", lang))
    ws.append(xlsx_cells(ws, [_word("method", lang), *_headers(METHOD_COLUMNS, lang)]))
    for m in breakdowns["methods"]:
        method = m["payment_method"]
        label = METHODS.get(method)
        name = method if label is None else in_language(label, lang)
        ws.append(xlsx_cells(ws, [name, *_figures(m, METHOD_COLUMNS)]))
    ws = wb.create_sheet(_word("heatmap", lang))
    ws.append(xlsx_cells(ws, [_word(k, lang) for k in ("weekday", "hour", "orders", "sales")]))
    for h in breakdowns["heatmap"]:
        ws.append(
            xlsx_cells(
                ws,
                [
                    in_language(WEEKDAYS[h["weekday"]], lang),
                    h["hour"],
                    h["orders"],
                    yuan_decimal(h["sales_fen"]),
                ],
            )
        )


def sales_workbook(
    series: dict[str, Any], breakdowns: dict[str, Any] | None = None, lang: str = "zh"
) -> bytes:
    """This period, the previous period and the same period last year; then, when given, the
    window's breakdowns (as GET /products, /categories, /payment-methods and /heatmap)."""
    wb = Workbook(write_only=True)
    _series_sheets(wb, series, SALES_COLUMNS, ("current", "previous", "last_year"), lang)
    if breakdowns is not None:
        _breakdown_sheets(wb, breakdowns, lang)
    return _save(wb)


def member_workbook(series: dict[str, Any], lang: str = "zh") -> bytes:
    """Members versus guests: this period and the previous period."""
    wb = Workbook(write_only=True)
    _series_sheets(wb, series, MEMBER_COLUMNS, ("current", "previous"), lang)
    return _save(wb)


def stock_workbook(analysis: dict[str, Any], lang: str = "zh") -> bytes:
    """By store, by category, each with a total row."""
    wb = Workbook(write_only=True)
    headers = _headers(STOCK_COLUMNS, lang)
    for part, id_key in (("by_store", "store_id"), ("by_category", "category_id")):
        ws = wb.create_sheet(_word(part, lang))
        ws.append(xlsx_cells(ws, [_word(id_key, lang), _word("name", lang), *headers]))
        for row in analysis[part]:
            name = row["name"] if row["name"] is not None else _word("uncategorised", lang)
            ws.append(xlsx_cells(ws, [row[id_key], name, *_figures(row, STOCK_COLUMNS)]))
        ws.append(
            xlsx_cells(
                ws, [None, _word("total", lang), *_figures(analysis["total"], STOCK_COLUMNS)]
            )
        )
    return _save(wb)


def _names(refs: list[dict[str, Any]]) -> str:
    return " + ".join(f"{r['name']} {r['spec']}".strip() for r in refs)


async def rules_workbook(
    session: AsyncSession, run_id: int, *, actor: Actor, lang: str = "zh", **filters: Any
) -> bytes:
    """The run's rules as the console filters and sorts them, every page (up to MAX_RULES)."""

    async def page_of(n: int) -> tuple[list[dict[str, Any]], int]:
        return await baskets.rules(
            session, run_id, actor=actor, params=PageParams(page=n, size=200), **filters
        )

    # The first page is read before the workbook exists: a run the caller may not see fails
    # here and leaves no half-written (never saved) write-only sheet behind.
    rows, total = await page_of(1)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_word("rules", lang))
    ws.append(xlsx_cells(ws, [in_language(label, lang) for label in RULE_HEADERS]))
    page, written = 1, 0
    while rows and written < MAX_RULES:
        for r in rows:
            ws.append(
                xlsx_cells(
                    ws,
                    [_names(r["antecedent"]), _names(r["consequent"]), r["size"], r["count"],
                     r["antecedent_count"], r["consequent_count"], r["support"],
                     r["confidence"], r["lift"]],
                )
            )  # fmt: skip
        written += len(rows)
        if written >= total:
            break
        page += 1
        rows, total = await page_of(page)
    return _save(wb)
