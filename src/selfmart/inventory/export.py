"""Spreadsheet exports: rows written to an xlsx in write-only mode (constant memory)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi.responses import Response
from openpyxl import Workbook

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: (header, how to get the cell from a row)
Column = tuple[str, Callable[[dict[str, Any]], Any]]


def local_time(zone: str) -> Callable[[Any], Any]:
    tz = ZoneInfo(zone)

    def fmt(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        return value

    return fmt


async def xlsx(rows: AsyncIterator[dict[str, Any]], columns: Sequence[Column], sheet: str) -> bytes:
    # The first row is read before the workbook exists, so that a query that fails at once
    # (an unknown store, a bad filter) leaves no half-written sheet behind.
    first = await anext(rows, None)
    book = Workbook(write_only=True)
    ws = book.create_sheet(title=sheet[:31])
    ws.append([header for header, _ in columns])
    if first is not None:
        ws.append([get(first) for _, get in columns])
        async for row in rows:
            ws.append([get(row) for _, get in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def download(content: bytes, filename: str) -> Response:
    return Response(
        content,
        media_type=XLSX_TYPE,
        headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )
