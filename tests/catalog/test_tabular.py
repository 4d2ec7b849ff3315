"""kit.tabular: reading xlsx and csv uploads, encodings, refusing what is not a spreadsheet."""

from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook

from selfmart.kit.tabular import TabularError, decode_text, read_table

CSV = "条码,名称,售价(元)\n6901939621257,可口可乐,3.50\n\n6901234567892,雪碧,3\n"


def xlsx(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.mark.parametrize("encoding", ["auto", "utf-8"])
def test_utf8_csv(encoding: str) -> None:
    for data in (CSV.encode(), b"\xef\xbb\xbf" + CSV.encode()):
        table = read_table(data, "a.csv", encoding=encoding, max_rows=10)  # type: ignore[arg-type]
        assert table.headers == ["条码", "名称", "售价(元)"]
        assert table.rows == [
            (2, ["6901939621257", "可口可乐", "3.50"]),
            (4, ["6901234567892", "雪碧", "3"]),
        ]
        assert table.encoding == "utf-8"


@pytest.mark.parametrize("encoding", ["auto", "gbk"])
def test_gbk_csv(encoding: str) -> None:
    table = read_table(CSV.encode("gbk"), "a.csv", encoding=encoding, max_rows=10)  # type: ignore[arg-type]
    assert table.rows[0][1][1] == "可口可乐"
    assert table.encoding == "gbk"


def test_gbk_declared_utf8_is_refused_not_garbled() -> None:
    with pytest.raises(TabularError) as info:
        read_table(CSV.encode("gbk"), "a.csv", encoding="utf-8", max_rows=10)
    assert (info.value.status, info.value.reason) == (422, "encoding_mismatch")
    assert "GBK" in info.value.message


def test_utf8_declared_gbk_is_refused_not_garbled() -> None:
    # UTF-8 Chinese also "decodes" as GB18030 — into nonsense; we refuse it.
    text = "名称,价格\n"
    assert text.encode().decode("gb18030") == "鍚嶇О,浠锋牸\n"
    with pytest.raises(TabularError) as info:
        decode_text(text.encode(), "gbk")
    assert info.value.reason == "encoding_mismatch"


def test_tab_separated() -> None:
    table = read_table("条码\t名称\n123\t水\n".encode(), "a.txt", max_rows=10)
    assert table.rows == [(2, ["123", "水"])]


def test_xlsx_keeps_types_and_row_numbers() -> None:
    data = xlsx([["条码", "售价(元)"], [6901939621257, 3.5], [None, None], ["SM1", "3.505"]])
    table = read_table(data, "upload.bin", max_rows=10)
    assert table.kind == "xlsx"
    assert table.rows == [(2, [6901939621257, 3.5]), (4, ["SM1", "3.505"])]


@pytest.mark.parametrize(
    ("data", "name", "status", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "a.csv", 415, "not_a_spreadsheet"),
        (b"%PDF-1.7\n...", "a.xlsx", 415, "not_a_spreadsheet"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "a.xls", 415, "legacy_xls"),
        (b"plain text but named xlsx", "a.xlsx", 415, "not_a_spreadsheet"),
        (b"\x00\x01\x02binary", "a.csv", 415, "not_a_spreadsheet"),
        (b"   \n  ", "a.csv", 422, "empty_file"),
        (b"\xff\xfe\xfa\x80\x81", "a.csv", 422, "undecodable"),
    ],
)
def test_not_a_spreadsheet(data: bytes, name: str, status: int, reason: str) -> None:
    with pytest.raises(TabularError) as info:
        read_table(data, name, max_rows=10)
    assert (info.value.status, info.value.reason) == (status, reason)


def test_a_zip_that_is_not_xlsx() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(TabularError) as info:
        read_table(out.getvalue(), "a.xlsx", max_rows=10)
    assert info.value.status == 415


def test_too_many_rows() -> None:
    data = ("a\n" + "1\n" * 11).encode()
    with pytest.raises(TabularError) as info:
        read_table(data, "a.csv", max_rows=10)
    assert info.value.reason == "too_many_rows"
