"""Money is integer fen everywhere; these helpers convert and round without floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import Field

#: The largest amount any field takes: 100 million yuan.
FEN_MAX = 10_000_000_000
Fen = Annotated[int, Field(ge=0, le=FEN_MAX, description="amount in fen (1/100 yuan)")]


def yuan_to_fen(value: str | Decimal) -> int:
    """Parse a yuan amount given as text ('3.50') into fen; refuses sub-fen precision."""
    amount = Decimal(value)
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError("amount has more than two decimal places")
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def yuan_decimal(fen: int | None) -> Decimal | None:
    """Fen as an exact Decimal of yuan with two places (a spreadsheet's number cell)."""
    return None if fen is None else Decimal(fen).scaleb(-2)


def percent_of(fen: int, percent: Decimal) -> int:
    """`percent` of `fen`, rounded half-up to a whole fen."""
    return int((Decimal(fen) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
