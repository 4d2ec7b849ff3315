"""Spreadsheet exports: rows written to an xlsx in write-only mode (constant memory), through
kit.tabular so that whatever text is stored cannot break the file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import anyio
from fastapi.responses import Response

from selfmart.kit.tabular import XlsxSpool

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
    spool = XlsxSpool([header for header, _ in columns], title=sheet)
    if first is not None:
        spool.append([get(first) for _, get in columns])
        async for row in rows:
            spool.append([get(row) for _, get in columns])
    return await anyio.to_thread.run_sync(spool.to_bytes)


def download(content: bytes, filename: str) -> Response:
    return Response(
        content,
        media_type=XLSX_TYPE,
        headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )
