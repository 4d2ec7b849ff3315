"""What every spreadsheet import shares, whatever it imports: the upload's bytes under a size
limit, the table read from them (a bad file is a 415/422 naming the field), header columns
matched to keys by their labels and aliases, the text of a cell, and the row-by-row report of
what is wrong (row, column as the file names it, reason, message, value)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime

import anyio
from fastapi import UploadFile

from selfmart.errors import ErrorDetail, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from selfmart.kit import tabular
from selfmart.kit.schema import Schema
from selfmart.kit.tabular import Cell, Encoding, Table, TabularError

#: The report lists this many bad cells at most (the count of bad rows is always whole).
MAX_REPORTED_ERRORS = 2000


class ImportRowError(Schema):
    #: 1-based row number as the spreadsheet shows it (the header is row 1).
    row: int
    column: str | None
    reason: str
    message: str
    value: str | None = None


def _invalid(field: str, reason: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        message, details=[ErrorDetail(field=field, reason=reason, message=message)]
    )


async def upload_bytes(upload: UploadFile, limit: int, field: str = "file") -> bytes:
    """The uploaded bytes; 413 naming the field once more than `limit` bytes arrive."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            message = f"The file is larger than {limit // (1024 * 1024)} MB"
            raise PayloadTooLarge(
                message, details=[ErrorDetail(field=field, reason="too_large", message=message)]
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(
    data: bytes, filename: str | None, *, encoding: Encoding, max_rows: int
) -> Table:
    """Read the upload in a worker thread; unreadable files are a 415 or 422 naming `file`
    (or `encoding` when the bytes are not in the declared encoding)."""
    try:
        return await anyio.to_thread.run_sync(
            lambda: tabular.read_table(data, filename, encoding=encoding, max_rows=max_rows)
        )
    except TabularError as exc:
        if exc.status == 415:
            raise UnsupportedMediaType(
                exc.message,
                details=[
                    ErrorDetail(field="file", reason="unsupported_media_type", message=exc.message)
                ],
            ) from None
        field = "encoding" if exc.reason == "encoding_mismatch" else "file"
        raise _invalid(field, exc.reason, exc.message) from None


def cell_text(cell: Cell) -> str:
    """A cell as text: whole floats without '.0', dates in ISO form, booleans as 是/否."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "是" if cell else "否"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime | date):
        return cell.isoformat()
    return str(cell).strip()


def norm_header(text: str) -> str:
    """A header as matched: spaces, brackets and underscores dropped, lower case, 元 dropped."""
    return re.sub(r"[\s()（）_]", "", text).lower().replace("元", "")


class Columns:
    """The columns an import knows: key → label, plus aliases; headers it skips silently."""

    def __init__(
        self,
        labels: Mapping[str, str],
        *,
        aliases: Mapping[str, str] | None = None,
        ignored: Iterable[str] = (),
        required: Iterable[str] = (),
    ) -> None:
        self.labels = dict(labels)
        self.required = list(required)
        self.ignored = {norm_header(h) for h in ignored}
        self.by_header: dict[str, str] = {}
        for key, label in self.labels.items():
            self.by_header[norm_header(label)] = key
            self.by_header[norm_header(key)] = key
        for alias, key in (aliases or {}).items():
            self.by_header[norm_header(alias)] = key

    def map(self, headers: list[str]) -> dict[int, str]:
        """Column index → key; a 422 on `file` naming unknown, duplicate or missing columns."""
        mapping: dict[int, str] = {}
        unknown: list[str] = []
        seen: dict[str, str] = {}
        for i, header in enumerate(headers):
            if not header:
                continue
            norm = norm_header(header)
            if norm in self.ignored:
                continue
            key = self.by_header.get(norm)
            if key is None:
                unknown.append(header)
                continue
            if key in seen:
                raise _invalid(
                    "file",
                    "duplicate_column",
                    f"The columns {seen[key]!r} and {header!r} are the same",
                )
            seen[key] = header
            mapping[i] = key
        if unknown:
            raise _invalid(
                "file",
                "unknown_columns",
                f"Unknown columns: {', '.join(unknown)}. "
                "Download the template for the column names.",
            )
        for key in self.required:
            if key not in seen:
                raise _invalid(
                    "file",
                    "missing_column",
                    f"The file has no {self.labels[key]} ({key}) column",
                )
        return mapping

    def cells(self, mapping: dict[int, str], cells: list[Cell]) -> dict[str, Cell]:
        """The row's non-empty cells by key."""
        out: dict[str, Cell] = {}
        for i, key in mapping.items():
            cell = cells[i] if i < len(cells) else None
            if cell is not None and not (isinstance(cell, str) and not cell.strip()):
                out[key] = cell
        return out


class RowErrors:
    """The row-by-row report being built: every bad row counted, the first
    MAX_REPORTED_ERRORS problems listed under the column name the file used."""

    def __init__(self, columns: Columns, headers: list[str], mapping: dict[int, str]) -> None:
        self.errors: list[ImportRowError] = []
        self.bad_rows: set[int] = set()
        self.labels = {key: headers[i] for i, key in mapping.items()}
        self.columns = columns

    def add(self, row: int, key: str | None, reason: str, message: str, value: Cell = None) -> None:
        self.bad_rows.add(row)
        if len(self.errors) < MAX_REPORTED_ERRORS:
            shown = None if value is None else cell_text(value)[:100]
            column = None if key is None else self.labels.get(key, self.columns.labels.get(key))
            self.errors.append(
                ImportRowError(row=row, column=column, reason=reason, message=message, value=shown)
            )

    @property
    def truncated(self) -> bool:
        return len(self.errors) >= MAX_REPORTED_ERRORS

    def sorted(self) -> list[ImportRowError]:
        return sorted(self.errors, key=lambda e: (e.row, e.column or ""))
