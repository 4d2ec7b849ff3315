"""Proof that the cached points balances are the ledger: every member's balance equals the sum
of their entries and the sum of what is left in their lots. Used by `selfmart check-points`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import Member, MemberPointsEntry, MemberPointsLot


@dataclass(frozen=True, slots=True)
class Mismatch:
    member_id: int
    member_no: str
    #: the cached balance on the member row
    balance: int
    #: the sum of the member's ledger entries
    ledger_sum: int
    #: the sum of what is left in the member's award lots
    lots_sum: int


async def find_mismatches(session: AsyncSession) -> list[Mismatch]:
    """Every member whose balance differs from their ledger or their lots, in one pass."""
    zero: Any = literal_column("0")
    entries: Select[Any, Any, Any, Any] = select(
        MemberPointsEntry.member_id.label("member_id"),
        zero.label("balance"),
        func.sum(MemberPointsEntry.points).label("ledger"),
        zero.label("lots"),
    ).group_by(MemberPointsEntry.member_id)
    lots: Select[Any, Any, Any, Any] = select(
        MemberPointsLot.member_id.label("member_id"),
        zero.label("balance"),
        zero.label("ledger"),
        func.sum(MemberPointsLot.remaining).label("lots"),
    ).group_by(MemberPointsLot.member_id)
    cached: Select[Any, Any, Any, Any] = select(
        Member.id.label("member_id"),
        Member.points_balance.label("balance"),
        zero.label("ledger"),
        zero.label("lots"),
    )
    both = union_all(entries, lots, cached).subquery()
    sums = (
        select(
            both.c.member_id,
            func.sum(both.c.balance).label("balance"),
            func.sum(both.c.ledger).label("ledger"),
            func.sum(both.c.lots).label("lots"),
        )
        .group_by(both.c.member_id)
        .having(
            (func.sum(both.c.balance) != func.sum(both.c.ledger))
            | (func.sum(both.c.balance) != func.sum(both.c.lots))
        )
        .subquery()
    )
    stmt = (
        select(sums.c.member_id, Member.member_no, sums.c.balance, sums.c.ledger, sums.c.lots)
        .join(Member, Member.id == sums.c.member_id, isouter=True)
        .order_by(sums.c.member_id)
    )
    return [
        Mismatch(int(m), str(no or "?"), int(b or 0), int(led or 0), int(lot or 0))
        for m, no, b, led, lot in (await session.execute(stmt)).all()
    ]
