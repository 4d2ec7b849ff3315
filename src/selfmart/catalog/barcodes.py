"""Barcode rules.

* All-digit codes are GS1 codes and must carry a valid check digit: 8 digits is EAN-8,
  12 is UPC-A, 13 is EAN-13 (the 20–29 prefixes GS1 reserves for in-store use included).
  Any other all-digit length is refused.
* In-house (internal) codes start with a letter and use A–Z, 0–9 and '-' (3–32 characters),
  e.g. "SM000123" or "FRESH-042". They carry no check digit. Lower case is folded to upper.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_INTERNAL = re.compile(r"^[A-Z][A-Z0-9-]{2,31}$")
_GS1_KINDS = {8: "ean8", 12: "upca", 13: "ean13"}


@dataclass(frozen=True, slots=True)
class Barcode:
    code: str
    kind: str  # ean13 | ean8 | upca | internal


class BarcodeError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def gs1_check_digit(body: str) -> int:
    """The GS1 check digit for `body` (all digits, without the check digit)."""
    # Weights run 3, 1, 3, ... from the rightmost digit of the body.
    digits = body[::-1]
    total = 3 * sum(map(int, digits[0::2])) + sum(map(int, digits[1::2]))
    return (10 - total % 10) % 10


def with_check_digit(body: str) -> str:
    return body + str(gs1_check_digit(body))


def parse_barcode(raw: str) -> Barcode:
    """Normalise and validate one code; raises BarcodeError with a stable reason."""
    code = raw.strip().upper()
    if not code:
        raise BarcodeError("empty", "the barcode is empty")
    if code.isascii() and code.isdigit():
        kind = _GS1_KINDS.get(len(code))
        if kind is None:
            raise BarcodeError(
                "bad_length",
                f"a numeric barcode must have 8 (EAN-8), 12 (UPC-A) or 13 (EAN-13) digits, "
                f"not {len(code)}",
            )
        if gs1_check_digit(code[:-1]) != int(code[-1]):
            expected = gs1_check_digit(code[:-1])
            raise BarcodeError(
                "bad_check_digit",
                f"{kind.upper()} check digit is wrong: expected {expected}, got {code[-1]}",
            )
        return Barcode(code, kind)
    if _INTERNAL.match(code):
        return Barcode(code, "internal")
    raise BarcodeError(
        "bad_format",
        "an internal code starts with a letter and has 3-32 characters of A-Z, 0-9 and '-'",
    )
