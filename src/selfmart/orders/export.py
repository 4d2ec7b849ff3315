"""Exporting a search to xlsx, streamed: rows go out as they are read, never all in memory.

An xlsx file is a zip of XML parts. The sheet is written row by row into a zip entry on a
non-seekable sink (zipfile then uses data descriptors), and whatever the sink holds is sent
after each chunk of rows. Strings are inline, so no shared-strings table has to be built first.
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.iam.actor import Actor
from selfmart.kit.money import fen_to_yuan
from selfmart.kit.tabular import export_text
from selfmart.models import Order
from selfmart.orders import search
from selfmart.orders.search import OrderFilters
from selfmart.orders.statemachine import OrderStatus

CHUNK_ROWS = 500
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# (key, zh-CN header, en header, kind): kind is text | money | time | int | status | method
COLUMNS: Sequence[tuple[str, str, str, str]] = (
    ("order_no", "订单号", "Order no.", "text"),
    ("client_order_id", "终端订单号", "Client order id", "text"),
    ("store_name", "门店", "Store", "text"),
    ("terminal_code", "终端", "Terminal", "text"),
    ("status", "状态", "Status", "status"),
    ("purchased_at", "购买时间", "Purchased at", "time"),
    ("created_at", "接收时间", "Received at", "time"),
    ("paid_at", "支付时间", "Paid at", "time"),
    ("item_count", "件数", "Items", "int"),
    ("subtotal_fen", "原价合计(元)", "Subtotal (yuan)", "money"),
    ("discount_fen", "优惠(元)", "Discount (yuan)", "money"),
    ("total_fen", "应收(元)", "Total (yuan)", "money"),
    ("paid_fen", "实收(元)", "Paid (yuan)", "money"),
    ("refunded_fen", "已退款(元)", "Refunded (yuan)", "money"),
    ("payment_method", "支付方式", "Payment method", "method"),
    ("member_no", "会员号", "Member no.", "text"),
    ("customer_name", "顾客", "Customer", "text"),
    ("customer_phone", "手机号", "Phone", "text"),
    ("open_issues", "待处理异常", "Open issues", "int"),
)

STATUS_LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "created": "已创建",
        "awaiting_payment": "待支付",
        "paid": "已支付",
        "completed": "已完成",
        "payment_failed": "支付失败",
        "out_of_stock": "缺货",
        "cancelled": "已取消",
        "closed": "已关闭(超时未付)",
        "refund_requested": "退款中",
        "partially_refunded": "部分退款",
        "refunded": "已退款",
    },
    "en": {
        "created": "Created",
        "awaiting_payment": "Awaiting payment",
        "paid": "Paid",
        "completed": "Completed",
        "payment_failed": "Payment failed",
        "out_of_stock": "Out of stock",
        "cancelled": "Cancelled",
        "closed": "Closed (payment timed out)",
        "refund_requested": "Refund requested",
        "partially_refunded": "Partially refunded",
        "refunded": "Refunded",
    },
}

#: The payment channels' names (the console's orders.paymentMethods); an unknown one as it is.
METHOD_LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {"manual": "手工记账", "wechat": "微信支付", "alipay": "支付宝", "card": "银行卡"},
    "en": {"manual": "Manual", "wechat": "WeChat Pay", "alipay": "Alipay", "card": "Bank card"},
}

_PKG = "http://schemas.openxmlformats.org/package/2006"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

_CONTENT_TYPES = (
    f'{_XML_DECL}<Types xmlns="{_PKG}/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_SML}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_SML}.worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_SML}.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/>'
    "</Relationships>"
)
_STYLES = (
    f"{_XML_DECL}"
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _workbook(sheet_name: str) -> str:
    return (
        f"{_XML_DECL}"
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'xmlns:r="{_REL}">'
        f'<sheets><sheet name="{escape(sheet_name)}" sheetId="1" r:id="rId1"/></sheets>'
        "</workbook>"
    )


def _col(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


def _text_cell(ref: str, value: str, style: int = 0) -> str:
    clean = escape(export_text(value))
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}" t="inlineStr"{s}><is><t xml:space="preserve">{clean}</t></is></c>'


def _row_xml(row_no: int, cells: Sequence[tuple[str, Any]]) -> str:
    out = [f'<row r="{row_no}">']
    for i, (kind, value) in enumerate(cells):
        ref = f"{_col(i)}{row_no}"
        if value is None or value == "":
            continue
        if kind == "money":
            out.append(f'<c r="{ref}" s="1"><v>{fen_to_yuan(int(value))}</v></c>')
        elif kind == "int":
            out.append(f'<c r="{ref}"><v>{int(value)}</v></c>')
        elif kind == "header":
            out.append(_text_cell(ref, str(value), style=2))
        else:
            out.append(_text_cell(ref, str(value)))
    out.append("</row>")
    return "".join(out)


class _Sink:
    """A write-only, non-seekable byte sink: zipfile streams into it, we drain it."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def drain(self) -> bytes:
        data = bytes(self._buf)
        self._buf.clear()
        return data


def _cells(row: dict[str, Any], lang: str) -> list[tuple[str, Any]]:
    labels = STATUS_LABELS.get(lang, STATUS_LABELS["zh-CN"])
    methods = METHOD_LABELS.get(lang, METHOD_LABELS["zh-CN"])
    zone = ZoneInfo(row.get("store_timezone") or "Asia/Shanghai")
    cells: list[tuple[str, Any]] = []
    for key, _zh, _en, kind in COLUMNS:
        value = row.get(key)
        if kind == "time" and isinstance(value, datetime):
            cells.append(("text", value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")))
        elif kind == "status":
            cells.append(("text", labels.get(str(value), str(value))))
        elif kind == "method":
            cells.append(("text", methods.get(str(value), str(value)) if value else None))
        else:
            cells.append((kind, value))
    return cells


async def stream_xlsx(
    factory: async_sessionmaker[AsyncSession],
    filters: OrderFilters,
    actor: Actor,
    *,
    lang: str = "zh-CN",
    on_progress: Callable[[int], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """The xlsx bytes of every order the search finds, produced while the rows are read."""
    sink = _Sink()
    zf = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)
    zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
    zf.writestr("_rels/.rels", _ROOT_RELS)
    zf.writestr("xl/workbook.xml", _workbook("订单" if lang == "zh-CN" else "Orders"))
    zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
    zf.writestr("xl/styles.xml", _STYLES)
    yield sink.drain()
    sheet = zf.open("xl/worksheets/sheet1.xml", mode="w", force_zip64=True)
    sheet.write(
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
        b'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews><sheetData>'
    )
    header_index = 1 if lang == "zh-CN" else 2
    sheet.write(_row_xml(1, [("header", c[header_index]) for c in COLUMNS]).encode())
    row_no = 1
    stmt = search.list_statement(filters, actor)
    async with factory() as session:
        result = await session.stream(stmt.execution_options(yield_per=CHUNK_ROWS))
        async for partition in result.mappings().partitions(CHUNK_ROWS):
            parts = []
            for row in partition:
                row_no += 1
                values = dict(row)
                values["customer_phone"] = search.shown_phone(values["customer_phone"], actor)
                parts.append(_row_xml(row_no, _cells(values, lang)))
            sheet.write("".join(parts).encode())
            if on_progress is not None:
                await on_progress(row_no - 1)
            chunk = sink.drain()
            if chunk:
                yield chunk
    sheet.write(b"</sheetData></worksheet>")
    sheet.close()
    zf.close()
    yield sink.drain()


# ---------------------------------------------------------------- large exports, as a job


def filters_to_params(filters: OrderFilters) -> dict[str, Any]:
    """The filters as JSON (job params travel as JSON)."""
    out: dict[str, Any] = {}
    for key, value in asdict(filters).items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, list):
            out[key] = [str(v) if isinstance(v, StrEnum) else v for v in value]
        else:
            out[key] = value
    return out


def filters_from_params(params: dict[str, Any]) -> OrderFilters:
    values = dict(params)
    for key in ("time_from", "time_to"):
        if values.get(key):
            values[key] = datetime.fromisoformat(values[key])
    values["status"] = [OrderStatus(s) for s in values.get("status") or []]
    return OrderFilters(**values)


def export_path(media_dir: Path, job_id: int) -> Path:
    return media_dir / "exports" / f"orders-{job_id}.xlsx"


async def count(
    factory: async_sessionmaker[AsyncSession], filters: OrderFilters, actor: Actor
) -> int:
    async with factory() as session:
        stmt = search.apply_filters(select(func.count(Order.id)), filters, actor)
        return int(await session.scalar(stmt) or 0)


async def write_file(
    factory: async_sessionmaker[AsyncSession],
    filters: OrderFilters,
    actor: Actor,
    path: Path,
    *,
    lang: str,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """Write the export to `path` (atomically: a partial file never has the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    rows = 0

    async def seen(n: int) -> None:
        nonlocal rows
        rows = n
        if on_progress is not None:
            await on_progress(n)

    with partial.open("wb") as out:
        async for chunk in stream_xlsx(factory, filters, actor, lang=lang, on_progress=seen):
            out.write(chunk)
    partial.replace(path)
    return rows
