"""The statistics, the stock analysis and a basket run's rules as xlsx workbooks, through
kit.tabular so that stored text cannot break a file; money in yuan with two decimals (exact,
from the fen), headers in Chinese as in the other exports."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import baskets
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import PageParams
from selfmart.kit.tabular import xlsx_cells

#: The most rules one export holds (the strongest first, as the console sorts them).
MAX_RULES = 50_000

SALES_COLUMNS: list[tuple[str, str, bool]] = [
    ("订单数", "orders", False),
    ("销售额(元)", "sales_fen", True),
    ("退款笔数", "refunds", False),
    ("退款额(元)", "refunds_fen", True),
    ("净销售额(元)", "net_sales_fen", True),
    ("客单价(元)", "avg_order_value_fen", True),
    ("件数", "items", False),
    ("件单数", "items_per_order", False),
    ("付款会员数", "paying_members", False),
    ("会员销售额(元)", "member_sales_fen", True),
]
MEMBER_COLUMNS: list[tuple[str, str, bool]] = [
    ("订单数", "orders", False),
    ("销售额(元)", "sales_fen", True),
    ("会员订单数", "member_orders", False),
    ("会员销售额(元)", "member_sales_fen", True),
    ("非会员订单数", "guest_orders", False),
    ("非会员销售额(元)", "guest_sales_fen", True),
    ("新会员数", "new_members", False),
    ("付款会员数", "paying_members", False),
    ("复购会员数", "repeat_members", False),
    ("复购率", "repurchase_rate", False),
]
STOCK_COLUMNS: list[tuple[str, str, bool]] = [
    ("商品数", "products", False),
    ("期初", "opening_qty", False),
    ("入库", "received_qty", False),
    ("售出", "sold_qty", False),
    ("损耗", "shrinkage_qty", False),
    ("损耗成本(元)", "shrinkage_fen", True),
    ("期末", "closing_qty", False),
    ("库存成本金额(元)", "stock_value_fen", True),
    ("售罄率(%)", "sell_through_bp", False),
    ("周转天数", "turnover_days", False),
]


def yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen).scaleb(-2).quantize(Decimal("0.01"))


def _cell(value: Any, money: bool, key: str = "") -> Any:
    if value is None:
        return None
    if money:
        return yuan(int(value))
    if key == "sell_through_bp":  # basis points as a percentage
        return Decimal(int(value)).scaleb(-2).quantize(Decimal("0.01"))
    return value


def _figures(f: dict[str, Any], columns: Sequence[tuple[str, str, bool]]) -> list[Any]:
    return [_cell(f.get(key), money, key) for _, key, money in columns]


def _save(wb: Workbook) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _series_workbook(
    series: dict[str, Any],
    columns: Sequence[tuple[str, str, bool]],
    parts: Sequence[tuple[str, str]],
) -> bytes:
    """One sheet per comparison (`parts`: sheet title, key), one row per period and a total."""
    wb = Workbook(write_only=True)
    for title, part in parts:
        ws = wb.create_sheet(title)
        ws.append(xlsx_cells(ws, ["周期", "开始", "结束", *(h for h, _, _ in columns)]))
        for p in series["periods"]:
            ws.append(
                xlsx_cells(ws, [p["period"], p["start"], p["end"], *_figures(p[part], columns)])
            )
        total = series["total"]
        ws.append(
            xlsx_cells(ws, ["合计", total["start"], total["end"], *_figures(total[part], columns)])
        )
    return _save(wb)


def sales_workbook(series: dict[str, Any]) -> bytes:
    """This period, the previous period and the same period last year."""
    return _series_workbook(
        series,
        SALES_COLUMNS,
        (("本期", "current"), ("上期", "previous"), ("去年同期", "last_year")),
    )


def member_workbook(series: dict[str, Any]) -> bytes:
    """Members versus guests: this period and the previous period."""
    return _series_workbook(series, MEMBER_COLUMNS, (("本期", "current"), ("上期", "previous")))


def stock_workbook(analysis: dict[str, Any]) -> bytes:
    """By store, by category, each with a total row."""
    wb = Workbook(write_only=True)
    headers = [h for h, _, _ in STOCK_COLUMNS]
    for title, part, id_key, id_header in (
        ("按门店", "by_store", "store_id", "门店ID"),
        ("按分类", "by_category", "category_id", "分类ID"),
    ):
        ws = wb.create_sheet(title)
        ws.append(xlsx_cells(ws, [id_header, "名称", *headers]))
        for row in analysis[part]:
            name = row["name"] if row["name"] is not None else "未分类"
            ws.append(xlsx_cells(ws, [row[id_key], name, *_figures(row, STOCK_COLUMNS)]))
        ws.append(xlsx_cells(ws, [None, "合计", *_figures(analysis["total"], STOCK_COLUMNS)]))
    return _save(wb)


def _names(refs: list[dict[str, Any]]) -> str:
    return " + ".join(f"{r['name']} {r['spec']}".strip() for r in refs)


async def rules_workbook(
    session: AsyncSession, run_id: int, *, actor: Actor, **filters: Any
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
    ws = wb.create_sheet("关联规则")
    ws.append(
        xlsx_cells(
            ws,
            ["前项", "后项", "商品数", "同时购买篮数", "前项篮数", "后项篮数",
             "支持度", "置信度", "提升度"],
        )
    )  # fmt: skip
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
