"""Writing audit entries to an xlsx (openpyxl write-only) or csv (UTF-8 with BOM) file."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from selfmart.audit import words
from selfmart.kit.tabular import csv_value, export_text
from selfmart.models import AuditLog

HEADERS = {
    "zh": [
        "时间",
        "操作者类型",
        "操作者ID",
        "操作者",
        "操作",
        "对象类型",
        "对象ID",
        "对象名称",
        "门店ID",
        "变更内容",
        "备注",
        "IP",
        "请求ID",
        "操作代码",
    ],
    "en": [
        "Time",
        "Actor type",
        "Actor ID",
        "Actor",
        "Action",
        "Entity type",
        "Entity ID",
        "Entity name",
        "Store ID",
        "Changes",
        "Note",
        "IP",
        "Request ID",
        "Action code",
    ],
}


def _row(entry: AuditLog, zone: ZoneInfo, lang: str) -> list[Any]:
    """One entry: actor type, action and entity type in words (the console's), the action's
    code in the last column for filtering and scripts."""
    return [
        entry.occurred_at.astimezone(zone).replace(tzinfo=None),
        words.actor_type(entry.actor_type, lang),
        entry.actor_id,
        entry.actor_name,
        words.action(entry.action, lang),
        words.entity_type(entry.entity_type, lang),
        entry.entity_id,
        entry.entity_label,
        entry.store_id,
        json.dumps(entry.changes, ensure_ascii=False, sort_keys=True) if entry.changes else "",
        entry.note,
        entry.ip,
        entry.request_id,
        entry.action,
    ]


class AuditWriter:
    """Accumulates rows into a spooled temporary file; `finish()` returns it rewound."""

    def __init__(self, fmt: str, lang: str, timezone: str) -> None:
        self.fmt = fmt
        self.zone = ZoneInfo(timezone)
        self.lang = "en" if lang == "en" else "zh-CN"
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        headers = HEADERS["en" if lang == "en" else "zh"]
        if fmt == "xlsx":
            self.wb = Workbook(write_only=True)
            self.ws = self.wb.create_sheet("audit")
            self.ws.column_dimensions["A"].width = 20
            self.ws.column_dimensions["H"].width = 30
            self.ws.column_dimensions["J"].width = 60
            self.ws.append(headers)
        else:
            self.text = io.TextIOWrapper(self.file, encoding="utf-8-sig", newline="")
            self.csv = csv.writer(self.text)
            self.csv.writerow(headers)

    def write(self, entries: Sequence[AuditLog]) -> None:
        for entry in entries:
            values = _row(entry, self.zone, self.lang)
            if self.fmt == "xlsx":
                self.ws.append([self._xlsx_cell(v) for v in values])
            else:
                self.csv.writerow([self._csv_value(v) for v in values])

    def _xlsx_cell(self, value: Any) -> Any:
        cell = WriteOnlyCell(self.ws, value=None)
        if isinstance(value, datetime):
            cell.value = value
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
        elif isinstance(value, str):
            cell.value = export_text(value)
            cell.data_type = "s"  # never a formula, whatever the text starts with
        else:
            cell.value = value
        return cell

    @staticmethod
    def _csv_value(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return csv_value(value)

    def finish(self) -> IO[bytes]:
        if self.fmt == "xlsx":
            self.wb.save(self.file)
        else:
            self.text.flush()
            self.text.detach()
        self.file.seek(0)
        return self.file
