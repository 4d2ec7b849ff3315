"""The points ledger: append-only entries, award lots spent oldest-expiry first, and the cached
balance on the member row, all changed in the caller's transaction.

Every change first locks the member's row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite
writers take turns anyway) and only then touches lots, so two changes of one member queue
instead of deadlocking, and the balance is debited with a conditional UPDATE (`WHERE
points_balance >= n`) that the CHECK constraint backs: it never goes below zero. Due lots are
expired before anything is spent, so a redemption never spends points that ran out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor, job_actor
from selfmart.kit.time import utcnow
from selfmart.members.exceptions import InsufficientPoints, MemberNotFound
from selfmart.models import Member, MemberPointsEntry, MemberPointsLot, MemberProgram


@dataclass(frozen=True, slots=True)
class Spent:
    """What a debit took: in total and from which lots."""

    points: int
    lots: list[tuple[int, int]]
    entry: MemberPointsEntry | None


async def program(session: AsyncSession) -> MemberProgram:
    found = await session.get(MemberProgram, 1)
    if found is None:
        found = MemberProgram(id=1, updated_at=utcnow())
        session.add(found)
        await session.flush()
    return found


async def lock(session: AsyncSession, member_id: int) -> int:
    """Take the member's row lock; returns the balance as it stands under the lock."""
    balance = await session.scalar(
        select(Member.points_balance).where(Member.id == member_id).with_for_update()
    )
    if balance is None:
        raise MemberNotFound(field="member_id")
    return int(balance)


def _entry(
    member_id: int,
    kind: str,
    points: int,
    balance_after: int,
    *,
    actor: Actor,
    now: datetime,
    order_id: int | None = None,
    lot_id: int | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> MemberPointsEntry:
    return MemberPointsEntry(
        member_id=member_id,
        kind=kind,
        points=points,
        balance_after=balance_after,
        order_id=order_id,
        lot_id=lot_id,
        reason=reason,
        data=data or {},
        actor_type=actor.kind,
        actor_id=actor.audit_id,
        actor_name=actor.name,
        occurred_at=now,
    )


async def _credit(session: AsyncSession, member_id: int, n: int, now: datetime) -> int:
    after = await session.scalar(
        update(Member)
        .where(Member.id == member_id)
        .values(points_balance=Member.points_balance + n, updated_at=now)
        .returning(Member.points_balance)
        .execution_options(synchronize_session=False)
    )
    assert after is not None
    return int(after)


async def _debit(session: AsyncSession, member_id: int, n: int, now: datetime) -> int | None:
    """Take n points if the balance holds them (row count checked); None when it does not."""
    after = await session.scalar(
        update(Member)
        .where(Member.id == member_id, Member.points_balance >= n)
        .values(points_balance=Member.points_balance - n, updated_at=now)
        .returning(Member.points_balance)
        .execution_options(synchronize_session=False)
    )
    return None if after is None else int(after)


async def award(
    session: AsyncSession,
    member_id: int,
    points: int,
    *,
    kind: str,
    actor: Actor,
    order_id: int | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> MemberPointsEntry:
    """Add points as a new lot that expires the programme's expiry days from now."""
    assert points > 0
    now = now or utcnow()
    await lock(session, member_id)
    rules = await program(session)
    lot = MemberPointsLot(
        member_id=member_id,
        awarded=points,
        remaining=points,
        awarded_at=now,
        expires_at=now + timedelta(days=rules.points_expiry_days),
        order_id=order_id,
    )
    session.add(lot)
    await session.flush()
    balance = await _credit(session, member_id, points, now)
    entry = _entry(
        member_id,
        kind,
        points,
        balance,
        actor=actor,
        now=now,
        order_id=order_id,
        lot_id=lot.id,
        reason=reason,
        data={"expires_at": lot.expires_at.isoformat()},
    )
    session.add(entry)
    await session.flush()
    return entry


async def _take_from_lots(
    session: AsyncSession,
    member_id: int,
    points: int,
    now: datetime,
    *,
    first_order_id: int | None = None,
) -> list[tuple[int, int]]:
    """Take `points` from the member's unexpired lots, the one expiring first first (the lot
    of `first_order_id` before all others when given). The caller holds the member's lock."""
    lots = list(
        (
            await session.scalars(
                select(MemberPointsLot)
                .where(
                    MemberPointsLot.member_id == member_id,
                    MemberPointsLot.remaining > 0,
                    MemberPointsLot.expires_at > now,
                )
                .order_by(MemberPointsLot.expires_at, MemberPointsLot.id)
            )
        ).all()
    )
    if first_order_id is not None:
        lots.sort(key=lambda lot: lot.order_id != first_order_id)  # stable: FIFO otherwise
    taken: list[tuple[int, int]] = []
    left = points
    for lot in lots:
        if left == 0:
            break
        take = min(left, lot.remaining)
        lot.remaining -= take
        left -= take
        taken.append((lot.id, take))
    # The lots' remaining points sum to the balance, so the balance check already held.
    assert left == 0, "points lots out of step with the balance"
    await session.flush()
    return taken


async def spend(
    session: AsyncSession,
    member_id: int,
    points: int,
    *,
    kind: str,
    actor: Actor,
    order_id: int | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Spent:
    """Take exactly `points` (redeem, or a negative adjustment), or raise InsufficientPoints."""
    assert points > 0
    now = now or utcnow()
    await lock(session, member_id)
    await expire_due(session, member_id, now=now)
    after = await _debit(session, member_id, points, now)
    if after is None:
        held = int(
            await session.scalar(select(Member.points_balance).where(Member.id == member_id)) or 0
        )
        raise InsufficientPoints(
            f"The member holds {held} points, fewer than {points}",
            field="points",
            balance=held,
        )
    lots = await _take_from_lots(session, member_id, points, now)
    entry = _entry(
        member_id,
        kind,
        -points,
        after,
        actor=actor,
        now=now,
        order_id=order_id,
        reason=reason,
        data={"lots": [list(t) for t in lots]},
    )
    session.add(entry)
    await session.flush()
    return Spent(points, lots, entry)


async def reverse(
    session: AsyncSession,
    member_id: int,
    points: int,
    *,
    order_id: int,
    actor: Actor,
    reason: str,
    now: datetime | None = None,
) -> Spent:
    """Take back what an order earned: from that order's own lot first, then oldest first,
    never more than the member holds. What could not be taken back (already spent or
    expired) is written on the entry as `uncollected`; the balance stays at zero or above."""
    assert points > 0
    now = now or utcnow()
    await expire_due(session, member_id, now=now)  # takes the member's lock
    balance = await session.scalar(select(Member.points_balance).where(Member.id == member_id))
    take = min(points, int(balance or 0))
    if take == 0:
        return Spent(0, [], None)
    after = await _debit(session, member_id, take, now)
    assert after is not None  # under the lock, with take <= balance
    lots = await _take_from_lots(session, member_id, take, now, first_order_id=order_id)
    entry = _entry(
        member_id,
        "reverse",
        -take,
        after,
        actor=actor,
        now=now,
        order_id=order_id,
        reason=reason,
        data={"lots": [list(t) for t in lots], "wanted": points, "uncollected": points - take},
    )
    session.add(entry)
    await session.flush()
    return Spent(take, lots, entry)


async def expire_due(
    session: AsyncSession, member_id: int, *, now: datetime | None = None
) -> list[MemberPointsEntry]:
    """Expire every lot of the member whose time has come (its remaining points, exactly).
    Takes the member's lock first."""
    now = now or utcnow()
    await lock(session, member_id)
    due = (
        await session.scalars(
            select(MemberPointsLot)
            .where(
                MemberPointsLot.member_id == member_id,
                MemberPointsLot.remaining > 0,
                MemberPointsLot.expires_at <= now,
            )
            .order_by(MemberPointsLot.expires_at, MemberPointsLot.id)
        )
    ).all()
    actor = job_actor("members.expire_points")
    out: list[MemberPointsEntry] = []
    for lot in due:
        n = lot.remaining
        after = await _debit(session, member_id, n, now)
        assert after is not None, "points lots out of step with the balance"
        lot.remaining = 0
        entry = _entry(
            member_id,
            "expire",
            -n,
            after,
            actor=actor,
            now=now,
            lot_id=lot.id,
            reason="expired",
            data={"expires_at": lot.expires_at.isoformat()},
        )
        session.add(entry)
        out.append(entry)
    await session.flush()
    return out


async def members_with_due_lots(
    session: AsyncSession, *, now: datetime | None = None, limit: int = 500
) -> list[int]:
    now = now or utcnow()
    rows = await session.scalars(
        select(MemberPointsLot.member_id)
        .where(MemberPointsLot.remaining > 0, MemberPointsLot.expires_at <= now)
        .group_by(MemberPointsLot.member_id)
        .order_by(MemberPointsLot.member_id)
        .limit(limit)
    )
    return [int(r) for r in rows.all()]


async def transfer(
    session: AsyncSession,
    from_member_id: int,
    to_member_id: int,
    points: int,
    *,
    actor: Actor,
    reason: str,
    now: datetime | None = None,
) -> tuple[MemberPointsEntry, MemberPointsEntry]:
    """A merge's move of a whole balance: a `merge_out` entry on one member, a `merge_in` on
    the other. The caller holds both locks and has moved the lots already."""
    assert points > 0
    now = now or utcnow()
    after_out = await _debit(session, from_member_id, points, now)
    assert after_out is not None, "points lots out of step with the balance"
    after_in = await _credit(session, to_member_id, points, now)
    out = _entry(
        from_member_id, "merge_out", -points, after_out, actor=actor, now=now, reason=reason,
        data={"to_member_id": to_member_id},
    )  # fmt: skip
    into = _entry(
        to_member_id, "merge_in", points, after_in, actor=actor, now=now, reason=reason,
        data={"from_member_id": from_member_id},
    )  # fmt: skip
    session.add_all([out, into])
    await session.flush()
    return out, into
