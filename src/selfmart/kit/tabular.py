"""Spreadsheet io: read an uploaded xlsx or csv (UTF-8 or GBK) into rows, write xlsx/csv.

Reading never guesses silently: a file that is not a spreadsheet is refused (415), a file
whose bytes do not match the declared encoding is refused with the encoding it looks like
(422) — text is never garbled into the database.

Writing is where every export's text passes (`export_text`, `xlsx_cells`, `csv_value`): an
export survives whatever is stored. A character no spreadsheet can hold (a control character
saved before input refused them) shows as U+FFFD instead of failing the whole file, and text
that starts like a formula stays text.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

import anyio
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils.exceptions import InvalidFileException

Cell = str | int | float | Decimal | bool | datetime | date | None
Encoding = Literal["auto", "utf-8", "gbk"]
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_BINARY_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"RIFF": "a RIFF (WebP/AVI/WAV) file",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7z archive",
}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class TabularError(Exception):
    """The upload cannot be read as a table. `status` is 415 (not a spreadsheet) or 422."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass
class Table:
    kind: Literal["xlsx", "csv"]
    headers: list[str]
    #: (row number as the spreadsheet shows it, cells); fully empty rows are left out.
    rows: list[tuple[int, list[Cell]]] = field(default_factory=list)
    encoding: str | None = None


def _is_blank(values: Sequence[Cell]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _header(values: Sequence[Cell]) -> list[str]:
    return ["" if v is None else str(v).strip() for v in values]


def decode_text(data: bytes, encoding: Encoding) -> tuple[str, str]:
    """(text, encoding used). Refuses bytes that do not match the declared encoding."""
    if data.startswith(b"\xef\xbb\xbf"):
        if encoding == "gbk":
            raise TabularError(
                422, "encoding_mismatch", "The file is UTF-8 (it has a UTF-8 BOM), not GBK"
            )
        data = data[3:]
        encoding = "utf-8"
    utf8: str | None
    try:
        utf8 = data.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = None
    gbk: str | None
    try:
        gbk = data.decode("gb18030") if utf8 is None or encoding == "gbk" else None
    except UnicodeDecodeError:
        gbk = None
    if encoding == "utf-8":
        if utf8 is not None:
            return utf8, "utf-8"
        if gbk is not None:
            raise TabularError(
                422,
                "encoding_mismatch",
                "The file was declared UTF-8 but is not valid UTF-8; it looks like GBK. "
                "Choose GBK (or automatic detection) and upload it again.",
            )
        raise TabularError(422, "undecodable", "The file is not valid UTF-8 text")
    if encoding == "gbk":
        if utf8 is not None and not utf8.isascii():
            # UTF-8 Chinese usually also "decodes" as GBK, into nonsense: refuse instead.
            raise TabularError(
                422,
                "encoding_mismatch",
                "The file was declared GBK but is UTF-8. Choose UTF-8 (or automatic detection).",
            )
        if gbk is None:
            raise TabularError(422, "undecodable", "The file is not valid GBK text")
        return gbk, "gbk"
    if utf8 is not None:
        return utf8, "utf-8"
    if gbk is not None:
        return gbk, "gbk"
    raise TabularError(422, "undecodable", "The file is neither UTF-8 nor GBK text")


def _sniff_binary(head: bytes) -> str | None:
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            return what
    if b"\x00" in head:
        return "a binary file"
    return None


def read_table(
    data: bytes, filename: str | None = None, *, encoding: Encoding = "auto", max_rows: int
) -> Table:
    """Read the first sheet of an xlsx, or a csv, into a Table. CPU-bound: run in a thread."""
    name = (filename or "").lower()
    if not data.strip():
        raise TabularError(422, "empty_file", "The file is empty")
    if data.startswith(b"PK\x03\x04"):
        return _read_xlsx(data, max_rows)
    if data.startswith(_OLE2):
        raise TabularError(
            415, "legacy_xls", "Old Excel (.xls) files are not supported: save it as .xlsx"
        )
    what = _sniff_binary(data[:8192])
    if what is not None:
        raise TabularError(
            415, "not_a_spreadsheet", f"The file is {what}, not an xlsx or csv spreadsheet"
        )
    if name.endswith((".xlsx", ".xlsm")):
        raise TabularError(415, "not_a_spreadsheet", "The file is named .xlsx but is not one")
    text, used = decode_text(data, encoding)
    return _read_csv(text, used, max_rows)


def _read_xlsx(data: bytes, max_rows: int) -> Table:
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError):
        raise TabularError(
            415, "not_a_spreadsheet", "The file is a zip archive but not an xlsx workbook"
        ) from None
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            raise TabularError(422, "empty_file", "The workbook has no sheet")
        rows_iter = ws.iter_rows(values_only=True)
        headers: list[str] | None = None
        table = Table(kind="xlsx", headers=[])
        for number, values in enumerate(rows_iter, start=1):
            if headers is None:
                if _is_blank(values):
                    continue
                headers = _header(values)
                table.headers = headers
                continue
            if _is_blank(values):
                continue
            if len(table.rows) >= max_rows:
                raise TabularError(
                    422, "too_many_rows", f"The file has more than {max_rows:,} rows"
                )
            table.rows.append((number, list(values)))
        if headers is None:
            raise TabularError(422, "empty_file", "The sheet is empty")
        return table
    finally:
        wb.close()


def _read_csv(text: str, used: str, max_rows: int) -> Table:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    table = Table(kind="csv", headers=[], encoding=used)
    headers: list[str] | None = None
    try:
        for number, values in enumerate(reader, start=1):
            cells: list[Cell] = list(values)
            if headers is None:
                if _is_blank(cells):
                    continue
                headers = _header(cells)
                table.headers = headers
                continue
            if _is_blank(cells):
                continue
            if len(table.rows) >= max_rows:
                raise TabularError(
                    422, "too_many_rows", f"The file has more than {max_rows:,} rows"
                )
            table.rows.append((number, cells))
    except csv.Error as exc:
        raise TabularError(422, "bad_csv", f"The CSV cannot be parsed: {exc}") from None
    if headers is None:
        raise TabularError(422, "empty_file", "The file has no header row")
    return table


# --- writing --------------------------------------------------------------------------------


#: What XML 1.0 (so an xlsx) cannot hold: C0 controls but tab and line breaks, lone
#: surrogates, U+FFFE and U+FFFF. openpyxl raises IllegalCharacterError on the controls.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: A spreadsheet reads a cell that starts with these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_text(text: str) -> str:
    """Text as every export writes it: each character a spreadsheet cannot hold is U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def xlsx_cells(ws: Any, values: Iterable[Any]) -> list[Any]:
    """A row for a write-only sheet's `append`: strings cleaned by export_text and typed as
    text (never a formula, whatever they start with); other values as they are."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, str):
            cell = WriteOnlyCell(ws, value=export_text(value))
            cell.data_type = "s"
            out.append(cell)
        else:
            out.append(value)
    return out


def csv_value(value: Any) -> Any:
    """A csv cell: text cleaned by export_text, and quoted with ' when a spreadsheet would
    take it for a formula."""
    if isinstance(value, str):
        text = export_text(value)
        return "'" + text if text.startswith(_FORMULA_START) else text
    return "" if value is None else value


def xlsx_bytes(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "Sheet1"
) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title)
    ws.append(xlsx_cells(ws, headers))
    for row in rows:
        ws.append(xlsx_cells(ws, row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def csv_bytes(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], encoding: str = "utf-8"
) -> bytes:
    """UTF-8 with a BOM, which is what Excel needs to open Chinese text correctly; or GBK for
    older tools, written as GB18030 (GBK's superset, identical on every GBK character) so that
    a rare character outside GBK is kept, not lost."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_value(h) for h in headers])
    writer.writerows([csv_value(v) for v in row] for row in rows)
    if encoding == "gbk":
        return out.getvalue().encode("gb18030")
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


class XlsxSpool:
    """A write-only workbook filled row by row (memory stays flat), then streamed from a
    temporary file: `async for chunk in spool.stream()` deletes the file when done."""

    def __init__(self, headers: Sequence[str], title: str = "Sheet1") -> None:
        self._wb = Workbook(write_only=True)
        self._ws = self._wb.create_sheet(title[:31])
        self._ws.append(xlsx_cells(self._ws, headers))
        self.rows = 0

    def append(self, row: Sequence[Any]) -> None:
        self._ws.append(xlsx_cells(self._ws, row))
        self.rows += 1

    def finish(self) -> Path:
        tmp = tempfile.NamedTemporaryFile(prefix="selfmart-", suffix=".xlsx", delete=False)  # noqa: SIM115
        tmp.close()
        self._wb.save(tmp.name)
        return Path(tmp.name)

    def to_bytes(self) -> bytes:
        """The whole workbook at once (for small exports). CPU-bound: run in a thread."""
        out = io.BytesIO()
        self._wb.save(out)
        return out.getvalue()

    async def stream(self, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        path = await anyio.to_thread.run_sync(self.finish)
        try:
            handle: IO[bytes] = await anyio.to_thread.run_sync(path.open, "rb")
            try:
                while chunk := await anyio.to_thread.run_sync(handle.read, chunk_size):
                    yield chunk
            finally:
                handle.close()
        finally:
            path.unlink(missing_ok=True)
