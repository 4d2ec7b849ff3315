"""The settlement spreadsheets (xlsx): store settlement, the fee report, one supplier
statement. Money is written as exact yuan (Decimal), so the sheet sums as the books do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio

from selfmart.kit.money import yuan_decimal
from selfmart.kit.searchlog import label_of, language_index
from selfmart.kit.tabular import XlsxSpool
from selfmart.models import SupplierStatement
from selfmart.settlement.stores import Report

#: every label in Chinese and in English (`lang` "zh" or "en": the console's language, sent
#: as Accept-Language)
SOURCES = {
    "bill": ("对账单", "Bill"),
    "ours": ("本系统记录(未对账)", "Our records (not reconciled)"),
}
CHANNELS = {
    "wechat": ("微信支付", "WeChat Pay"), "alipay": ("支付宝", "Alipay"),
    "card": ("银联", "UnionPay"), "manual": ("人工", "Manual"),
}  # fmt: skip
KINDS = {
    "received": ("收货", "Received"), "sold": ("代销售出", "Sold (consignment)"),
    "returned": ("退货", "Returned"), "shrinkage": ("损耗", "Shrinkage"),
}  # fmt: skip
STATUSES = {
    "draft": ("草稿", "Draft"), "reviewed": ("已复核", "Reviewed"),
    "approved": ("已审批", "Approved"), "paid": ("已付款", "Paid"),
}  # fmt: skip
BASES = {
    "received": ("按收货结算", "On goods received"),
    "consignment": ("代销(按售出结算)", "Consignment (on goods sold)"),
}
WORDS = {
    "total": ("合计", "Total"), "estimated": ("估算", "Estimated"), "flagged": ("异常", "Flagged"),
    "yes": ("是", "Yes"), "no": ("否", "No"), "late": ("上期补记", "Late, from an earlier period"),
}  # fmt: skip
STORE_HEADERS = (
    ("日期", "Date"), ("门店", "Store"), ("渠道", "Channel"), ("来源", "Source"),
    ("笔数", "Lines"), ("销售额(元)", "Sales (CNY)"), ("退款(元)", "Refunds (CNY)"),
    ("手续费(元)", "Fees (CNY)"), ("净额(元)", "Net (CNY)"), ("手续费说明", "Fee note"),
)  # fmt: skip
FEE_HEADERS = (
    ("账单日", "Bill date"), ("渠道", "Channel"), ("商户账号ID", "Merchant account ID"),
    ("门店", "Store"), ("笔数", "Lines"), ("收款(元)", "Received (CNY)"),
    ("退款(元)", "Refunds (CNY)"), ("实收手续费(元)", "Fees charged (CNY)"),
    ("按费率应收(元)", "Fees at the rate (CNY)"), ("差额(元)", "Difference (CNY)"),
    ("费率(基点)", "Rate (bp)"), ("无费率笔数", "Lines without a rate"),
    ("手续费不符笔数", "Lines with a fee difference"), ("标记", "Flag"),
)  # fmt: skip
STATEMENT_FIELDS = {
    "item": ("项目", "Item"), "value": ("内容", "Value"), "number": ("结算单号", "Statement"),
    "supplier": ("供应商", "Supplier"), "period": ("结算期间", "Period"),
    "basis": ("结算方式", "Basis"),
    "shrinkage_borne": ("供应商承担损耗", "Supplier bears shrinkage"),
    "status": ("状态", "Status"), "goods": ("货款(元)", "Goods (CNY)"),
    "returns": ("退货(元)", "Returns (CNY)"), "shrinkage": ("损耗(元)", "Shrinkage (CNY)"),
    "total": ("应付合计(元)", "Total payable (CNY)"), "approved_by": ("审批人", "Approved by"),
    "reference": ("付款流水号", "Payment reference"),
}  # fmt: skip
LINE_HEADERS = (
    ("类型", "Kind"), ("商品ID", "Product ID"), ("商品名称", "Product"), ("数量", "Quantity"),
    ("单价(元)", "Unit cost (CNY)"), ("金额(元)", "Amount (CNY)"), ("补记", "Note"),
)  # fmt: skip
TITLES = {
    "stores": ("门店结算", "Store settlement"), "fees": ("平台手续费", "Platform fees"),
    "statement": ("供应商结算单", "Supplier statement"),
}  # fmt: skip


async def _xlsx(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str) -> bytes:
    spool = XlsxSpool(headers, title=title)
    for row in rows:
        spool.append(row)
    return await anyio.to_thread.run_sync(spool.to_bytes)


async def stores_xlsx(report: Report, lang: str = "zh") -> bytes:
    n = language_index(lang)
    rows: list[list[Any]] = [
        [
            r["period"],
            r["store_name"] or "-",
            label_of(CHANNELS, r["channel"], lang),
            label_of(SOURCES, r["source"], lang),
            r["lines"],
            yuan_decimal(r["sales_fen"]),
            yuan_decimal(r["refunds_fen"]),
            yuan_decimal(r["fees_fen"]),
            yuan_decimal(r["net_fen"]),
            WORDS["estimated"][n] if r["fees_estimated"] else "",
        ]
        for r in report.rows
    ]
    t = report.totals
    rows.append(
        [
            WORDS["total"][n], "", "", "", t["lines"], yuan_decimal(t["sales_fen"]),
            yuan_decimal(t["refunds_fen"]), yuan_decimal(t["fees_fen"]),
            yuan_decimal(t["net_fen"]), "",
        ]
    )  # fmt: skip
    return await _xlsx([h[n] for h in STORE_HEADERS], rows, TITLES["stores"][n])


async def fees_xlsx(rows: Sequence[dict[str, Any]], lang: str = "zh") -> bytes:
    n = language_index(lang)
    return await _xlsx(
        [h[n] for h in FEE_HEADERS],
        [
            [
                r["bill_date"],
                label_of(CHANNELS, r["channel"], lang),
                r["account_id"],
                r["store_name"] or "-",
                r["lines"],
                yuan_decimal(r["sales_fen"]),
                yuan_decimal(r["refunds_fen"]),
                yuan_decimal(r["fee_fen"]),
                yuan_decimal(r["expected_fee_fen"]),
                yuan_decimal(r["difference_fen"]),
                r["rate_bp"],
                r["lines_without_rate"],
                r["fee_differs"],
                WORDS["flagged"][n] if r["flagged"] else "",
            ]  # fmt: skip
            for r in rows
        ],
        TITLES["fees"][n],
    )


async def statement_xlsx(stmt: SupplierStatement, supplier_name: str, lang: str = "zh") -> bytes:
    n = language_index(lang)
    f = {key: pair[n] for key, pair in STATEMENT_FIELDS.items()}
    spool = XlsxSpool([f["item"], f["value"]], title=TITLES["statement"][n])
    for key, value in (
        (f["number"], stmt.number),
        (f["supplier"], supplier_name),
        (f["period"], f"{stmt.period_start} ~ {stmt.period_end}"),
        (f["basis"], label_of(BASES, stmt.basis, lang)),
        (f["shrinkage_borne"], WORDS["yes" if stmt.shrinkage_borne else "no"][n]),
        (f["status"], label_of(STATUSES, stmt.status, lang)),
        (f["goods"], yuan_decimal(stmt.goods_fen)),
        (f["returns"], yuan_decimal(stmt.returns_fen)),
        (f["shrinkage"], yuan_decimal(stmt.shrinkage_fen)),
        (f["total"], yuan_decimal(stmt.total_fen)),
        (f["approved_by"], stmt.approved_by or ""),
        (f["reference"], stmt.payment_reference or ""),
    ):
        spool.append([key, value])
    spool.append([])
    spool.append([h[n] for h in LINE_HEADERS])
    for ln in stmt.lines:
        spool.append(
            [
                label_of(KINDS, ln.kind, lang), ln.product_id, ln.product_name, ln.quantity,
                yuan_decimal(ln.unit_cost_fen), yuan_decimal(ln.amount_fen),
                WORDS["late"][n] if ln.late else "",
            ]
        )  # fmt: skip
    return await anyio.to_thread.run_sync(spool.to_bytes)
