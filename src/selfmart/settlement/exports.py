"""The settlement spreadsheets (xlsx): store settlement, the fee report, one supplier
statement. Money is written as exact yuan (Decimal), so the sheet sums as the books do."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import anyio

from selfmart.kit.tabular import XlsxSpool
from selfmart.models import SupplierStatement
from selfmart.settlement.stores import Report

SOURCES = {"bill": "对账单", "ours": "本系统记录(未对账)"}
CHANNELS = {"wechat": "微信支付", "alipay": "支付宝", "card": "银联", "manual": "人工"}
KINDS = {"received": "收货", "sold": "代销售出", "returned": "退货", "shrinkage": "损耗"}
STATUSES = {"draft": "草稿", "reviewed": "已复核", "approved": "已审批", "paid": "已付款"}
BASES = {"received": "按收货结算", "consignment": "代销(按售出结算)"}


def yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen).scaleb(-2)


async def _xlsx(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str) -> bytes:
    spool = XlsxSpool(headers, title=title)
    for row in rows:
        spool.append(row)
    return await anyio.to_thread.run_sync(spool.to_bytes)


async def stores_xlsx(report: Report) -> bytes:
    rows: list[list[Any]] = [
        [
            r["period"],
            r["store_name"] or "-",
            CHANNELS.get(r["channel"], r["channel"]),
            SOURCES.get(r["source"], r["source"]),
            r["lines"],
            yuan(r["sales_fen"]),
            yuan(r["refunds_fen"]),
            yuan(r["fees_fen"]),
            yuan(r["net_fen"]),
            "估算" if r["fees_estimated"] else "",
        ]
        for r in report.rows
    ]
    t = report.totals
    rows.append(
        [
            "合计", "", "", "", t["lines"], yuan(t["sales_fen"]), yuan(t["refunds_fen"]),
            yuan(t["fees_fen"]), yuan(t["net_fen"]), "",
        ]
    )  # fmt: skip
    headers = [
        "日期", "门店", "渠道", "来源", "笔数", "销售额(元)", "退款(元)", "手续费(元)",
        "净额(元)", "手续费说明",
    ]  # fmt: skip
    return await _xlsx(headers, rows, "门店结算")


async def fees_xlsx(rows: Sequence[dict[str, Any]]) -> bytes:
    headers = [
        "账单日", "渠道", "商户账号ID", "门店", "笔数", "收款(元)", "退款(元)",
        "实收手续费(元)", "按费率应收(元)", "差额(元)", "费率(基点)", "无费率笔数",
        "手续费不符笔数", "标记",
    ]  # fmt: skip
    return await _xlsx(
        headers,
        [
            [
                r["bill_date"],
                CHANNELS.get(r["channel"], r["channel"]),
                r["account_id"],
                r["store_name"] or "-",
                r["lines"],
                yuan(r["sales_fen"]),
                yuan(r["refunds_fen"]),
                yuan(r["fee_fen"]),
                yuan(r["expected_fee_fen"]),
                yuan(r["difference_fen"]),
                r["rate_bp"],
                r["lines_without_rate"],
                r["fee_differs"],
                "异常" if r["flagged"] else "",
            ]  # fmt: skip
            for r in rows
        ],
        "平台手续费",
    )


async def statement_xlsx(stmt: SupplierStatement, supplier_name: str) -> bytes:
    spool = XlsxSpool(["项目", "内容"], title="供应商结算单")
    for key, value in (
        ("结算单号", stmt.number),
        ("供应商", supplier_name),
        ("结算期间", f"{stmt.period_start} ~ {stmt.period_end}"),
        ("结算方式", BASES.get(stmt.basis, stmt.basis)),
        ("供应商承担损耗", "是" if stmt.shrinkage_borne else "否"),
        ("状态", STATUSES.get(stmt.status, stmt.status)),
        ("货款(元)", yuan(stmt.goods_fen)),
        ("退货(元)", yuan(stmt.returns_fen)),
        ("损耗(元)", yuan(stmt.shrinkage_fen)),
        ("应付合计(元)", yuan(stmt.total_fen)),
        ("审批人", stmt.approved_by or ""),
        ("付款流水号", stmt.payment_reference or ""),
    ):
        spool.append([key, value])
    spool.append([])
    spool.append(["类型", "商品ID", "商品名称", "数量", "单价(元)", "金额(元)", "补记"])
    for ln in stmt.lines:
        spool.append(
            [
                KINDS.get(ln.kind, ln.kind), ln.product_id, ln.product_name, ln.quantity,
                yuan(ln.unit_cost_fen), yuan(ln.amount_fen), "上期补记" if ln.late else "",
            ]
        )  # fmt: skip
    return await anyio.to_thread.run_sync(spool.to_bytes)
