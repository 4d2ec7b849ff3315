"""Matching a bill line against our record of the same money, as plain functions: which class
of difference it is (or matched), in words, and the fee the configured rate gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from selfmart.reconciliation.bills import BillLine

MATCHED = "matched"
OURS_ONLY = "ours_only"
PLATFORM_ONLY = "platform_only"
AMOUNT_DIFFERS = "amount_differs"
STATUS_DIFFERS = "status_differs"
REFUND_DIFFERS = "refund_differs"
FEE_DIFFERS = "fee_differs"
#: a bill line the bill already has (the same payment, or the same refund): shown, never
#: matched or counted a second time
DUPLICATE_LINE = "duplicate_line"
CLASSES = (
    MATCHED,
    OURS_ONLY,
    PLATFORM_ONLY,
    AMOUNT_DIFFERS,
    STATUS_DIFFERS,
    REFUND_DIFFERS,
    FEE_DIFFERS,
    DUPLICATE_LINE,
)
#: the platforms' word for settled money in a bill line
SETTLED = "SUCCESS"


class Ours(NamedTuple):
    """Our payment or refund, as much of it as matching needs (a named tuple: one is made per
    bill line looked up, a million a day, at about half a frozen dataclass's cost)."""

    id: int
    order_id: int
    store_id: int
    amount_fen: int
    #: pending | succeeded | failed
    status: str
    #: the payment a refund gives back (refunds only)
    payment_id: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    difference: str
    detail: str
    expected_fee_fen: int | None


def expected_fee(amount_fen: int, rate_bp: int | None) -> int | None:
    """The fee on `amount_fen` at `rate_bp` basis points, rounded half up to the fen (as the
    platforms round)."""
    if rate_bp is None:
        return None
    return (amount_fen * rate_bp + 5_000) // 10_000


def judge(line: BillLine, ours: Ours | None, rate_bp: int | None) -> Verdict:
    """The class of one bill line against our record of it (None: we have none)."""
    fee = expected_fee(line.amount_fen, rate_bp)
    if fee is not None and line.kind == "refund":
        fee = -fee
    if line.kind == "refund":
        if ours is None:
            return Verdict(REFUND_DIFFERS, "the platform refunded; we have no such refund", fee)
        if ours.status != "succeeded" or line.status != SETTLED:
            return Verdict(
                REFUND_DIFFERS,
                f"refund is {ours.status} here and {line.status} on the platform",
                fee,
            )
        if ours.amount_fen != line.amount_fen:
            return Verdict(
                REFUND_DIFFERS,
                f"refund of {ours.amount_fen} fen here, {line.amount_fen} on the platform",
                fee,
            )
    else:
        if ours is None:
            return Verdict(PLATFORM_ONLY, "paid on the platform; we have no such payment", fee)
        if ours.status != "succeeded" or line.status != SETTLED:
            return Verdict(
                STATUS_DIFFERS,
                f"payment is {ours.status} here and {line.status} on the platform",
                fee,
            )
        if ours.amount_fen != line.amount_fen:
            return Verdict(
                AMOUNT_DIFFERS,
                f"{ours.amount_fen} fen here, {line.amount_fen} on the platform",
                fee,
            )
    if fee is not None and fee != line.fee_fen:
        return Verdict(
            FEE_DIFFERS, f"fee {line.fee_fen} fen charged, {fee} at the configured rate", fee
        )
    return Verdict(MATCHED, "", fee)
