"""A reconciled day as an xlsx workbook for the finance team: one sheet of totals per
account (the bill's, the platform's trailer, ours) and one of every difference."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor
from selfmart.kit.tabular import xlsx_cells
from selfmart.models import ReconciliationItem, ReconciliationRun
from selfmart.reconciliation import reports
from selfmart.reconciliation.matching import MATCHED

MONEY = "money"
# (zh-CN header, en header, value of a run)
TOTALS: list[tuple[str, str, str]] = [
    ("账单日", "Bill day", "bill_date"),
    ("渠道", "Channel", "channel"),
    ("商户账户", "Account", "account_id"),
    ("状态", "Status", "status"),
    ("账单笔数", "Bill lines", "line_count"),
    ("差异数", "Differences", "difference_count"),
    ("账单收款", "Bill gross", "bill_gross_fen"),
    ("账单退款", "Bill refunds", "bill_refund_fen"),
    ("账单手续费", "Bill fees", "bill_fee_fen"),
    ("账单净额", "Bill net", "bill_net_fen"),
    ("平台汇总收款", "Platform total gross", "trailer_gross_fen"),
    ("平台汇总退款", "Platform total refunds", "trailer_refund_fen"),
    ("平台汇总手续费", "Platform total fees", "trailer_fee_fen"),
    ("我方收款", "Our gross", "our_gross_fen"),
    ("我方退款", "Our refunds", "our_refund_fen"),
    ("按费率应收手续费", "Fees at our rate", "expected_fee_fen"),
    ("文件 SHA-256", "File SHA-256", "file_sha256"),
    ("错误", "Error", "last_error"),
]
DIFFERENCES: list[tuple[str, str, str]] = [
    ("差异编号", "Difference id", "id"),
    ("渠道", "Channel", "channel"),
    ("商户账户", "Account", "account_id"),
    ("类别", "Class", "difference"),
    ("状态", "State", "state"),
    ("类型", "Kind", "kind"),
    ("账单行", "Bill line", "line_no"),
    ("平台交易号", "Platform transaction", "transaction_id"),
    ("商户订单号", "Our number", "out_trade_no"),
    ("商户退款单号", "Our refund number", "out_refund_no"),
    ("订单", "Order", "order_id"),
    ("门店", "Store", "store_id"),
    ("我方金额", "Our amount", "our_amount_fen"),
    ("我方状态", "Our status", "our_status"),
    ("账单金额", "Bill amount", "bill_amount_fen"),
    ("账单状态", "Bill status", "bill_status"),
    ("账单手续费", "Bill fee", "bill_fee_fen"),
    ("按费率手续费", "Fee at our rate", "expected_fee_fen"),
    ("说明", "Detail", "detail"),
    ("处理", "Resolution", "resolution"),
    ("备注", "Note", "note"),
    ("处理人", "Resolved by", "resolved_by"),
]


def _value(key: str, value: Any) -> Any:
    if key.endswith("_fen") and isinstance(value, int):
        return Decimal(value).scaleb(-2)
    return value


async def day_workbook(
    session: AsyncSession,
    day: date,
    *,
    actor: Actor,
    channel: str | None = None,
    lang: str = "zh-CN",
) -> bytes:
    """The day's runs and differences (as `actor` may see them) as xlsx bytes."""
    col = 0 if lang == "zh-CN" else 1
    wb = Workbook(write_only=True)
    totals = wb.create_sheet("汇总" if col == 0 else "Totals")
    totals.append(xlsx_cells(totals, [t[col] for t in TOTALS]))
    runs = await reports.list_runs(
        session, actor=actor, date_from=day, date_to=day, channel=channel
    )
    for run in runs:
        doc = {c.key: getattr(run, c.key) for c in ReconciliationRun.__table__.columns}
        doc["bill_net_fen"] = run.bill_gross_fen - run.bill_refund_fen - run.bill_fee_fen
        totals.append(xlsx_cells(totals, [_value(k, doc.get(k)) for _, _, k in TOTALS]))
    sheet = wb.create_sheet("差异" if col == 0 else "Differences")
    sheet.append(xlsx_cells(sheet, [t[col] for t in DIFFERENCES]))
    ids = [r.id for r in runs]
    by_run = {r.id: r for r in runs}
    if ids:
        items = await session.scalars(
            select(ReconciliationItem)
            .where(ReconciliationItem.run_id.in_(ids), ReconciliationItem.difference != MATCHED)
            .order_by(ReconciliationItem.run_id, ReconciliationItem.id)
        )
        for item in items:
            run = by_run[item.run_id]
            doc = {c.key: getattr(item, c.key) for c in ReconciliationItem.__table__.columns}
            doc.update(channel=run.channel, account_id=run.account_id)
            sheet.append(xlsx_cells(sheet, [_value(k, doc.get(k)) for _, _, k in DIFFERENCES]))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
