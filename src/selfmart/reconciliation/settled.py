"""What settlement reads from reconciliation: the bills' lines of reconciled days summed per
day, account, store and kind, and which of our records a bill has accounted for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import ReconciliationItem, ReconciliationRun
from selfmart.reconciliation.matching import DUPLICATE_LINE


@dataclass(frozen=True, slots=True)
class BilledSum:
    bill_date: date
    channel: str
    account_id: int
    #: None: the platform's line matched none of our records (no store known)
    store_id: int | None
    #: payment | refund
    kind: str
    lines: int
    amount_fen: int
    fee_fen: int
    #: the fee the configured rate gives, over the lines it was worked out for
    expected_fee_fen: int
    lines_without_rate: int
    fee_differs: int


def _billed() -> Select[Any]:
    return (
        select(ReconciliationItem.id)
        .join(ReconciliationRun, ReconciliationRun.id == ReconciliationItem.run_id)
        .where(
            ReconciliationRun.status == "reconciled",
            ReconciliationRun.kind == "trade",
            ReconciliationItem.line_no.is_not(None),
        )
    )


async def billed_sums(
    session: AsyncSession,
    *,
    date_from: date,
    date_to: date,
    store_ids: list[int] | None = None,
) -> list[BilledSum]:
    """The bill lines of reconciled trade bills in [date_from, date_to], summed."""
    item, run = ReconciliationItem, ReconciliationRun
    stmt = (
        select(
            run.bill_date,
            run.channel,
            run.account_id,
            item.store_id,
            item.kind,
            func.count(),
            func.sum(item.bill_amount_fen),
            func.sum(item.bill_fee_fen),
            func.sum(item.expected_fee_fen),
            func.count() - func.count(item.expected_fee_fen),
            func.sum(case((item.difference == "fee_differs", 1), else_=0)),
        )
        .join(run, run.id == item.run_id)
        .where(
            run.status == "reconciled",
            run.kind == "trade",
            item.line_no.is_not(None),
            item.difference != DUPLICATE_LINE,  # its money is the first line's
            run.bill_date >= date_from,
            run.bill_date <= date_to,
        )
        .group_by(run.bill_date, run.channel, run.account_id, item.store_id, item.kind)
    )
    if store_ids is not None:
        stmt = stmt.where(item.store_id.in_(store_ids))
    return [
        BilledSum(
            bill_date=d,
            channel=str(ch),
            account_id=int(acc),
            store_id=None if sid is None else int(sid),
            kind=str(kind),
            lines=int(n),
            amount_fen=int(amount or 0),
            fee_fen=int(fee or 0),
            expected_fee_fen=int(expected or 0),
            lines_without_rate=int(no_rate or 0),
            fee_differs=int(differs or 0),
        )
        for d, ch, acc, sid, kind, n, amount, fee, expected, no_rate, differs in (
            await session.execute(stmt)
        )
    ]


def billed_payment_ids() -> Select[Any]:
    """Our payments a reconciled bill holds (as a subquery)."""
    return (
        _billed()
        .with_only_columns(ReconciliationItem.payment_id)
        .where(ReconciliationItem.payment_id.is_not(None))
    )


def billed_refund_ids() -> Select[Any]:
    """Our refunds a reconciled bill holds (as a subquery)."""
    return (
        _billed()
        .with_only_columns(ReconciliationItem.refund_id)
        .where(ReconciliationItem.refund_id.is_not(None))
    )
