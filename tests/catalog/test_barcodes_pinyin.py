"""Barcode check digits and the pinyin search keys (pure functions)."""

from __future__ import annotations

import pytest

from selfmart.catalog.barcodes import BarcodeError, gs1_check_digit, parse_barcode
from selfmart.catalog.pinyin import normalise_query, search_keys


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("6901939621257", "ean13"),  # a real 可口可乐 500ml code
        ("4006381333931", "ean13"),
        ("96385074", "ean8"),
        ("036000291452", "upca"),
        ("2000000000015", "ean13"),  # GS1 in-store range, still check-digit validated
        ("sm000123", "internal"),
        ("FRESH-042", "internal"),
    ],
)
def test_valid_codes(code: str, kind: str) -> None:
    parsed = parse_barcode(code)
    assert parsed.kind == kind
    assert parsed.code == code.upper()


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("6901939621258", "bad_check_digit"),
        ("96385075", "bad_check_digit"),
        ("036000291453", "bad_check_digit"),
        ("12345", "bad_length"),
        ("69019396212570", "bad_length"),
        ("", "empty"),
        ("12AB", "bad_format"),
        ("条码123", "bad_format"),
        ("AB", "bad_format"),
    ],
)
def test_invalid_codes(code: str, reason: str) -> None:
    with pytest.raises(BarcodeError) as info:
        parse_barcode(code)
    assert info.value.reason == reason


def test_check_digit() -> None:
    assert gs1_check_digit("690193962125") == 7
    assert gs1_check_digit("9638507") == 4


def test_pinyin_keys() -> None:
    full, initials = search_keys("可口可乐 500ml", "可口可乐")
    assert full == "kekoukele500ml|kekoukele"
    assert initials == "kkkl500ml|kkkl"
    assert search_keys("康师傅红烧牛肉面") == ("kangshifuhongshaoniuroumian", "ksfhsnrm")
    assert normalise_query(" KKKL ") == "kkkl"
    assert normalise_query("可乐") == ""
