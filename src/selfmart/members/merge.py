"""Merging two records of the same person: the survivor keeps its number and takes over the
other's orders, points, coupons and tier history; the other is marked `merged` and points to
the survivor.

Points stay a ledger on both sides: the merged record's unspent award lots move to the
survivor with their expiry (so FIFO and expiry stay exact), a `merge_out` entry takes the
merged record's balance to zero, and a `merge_in` entry adds it to the survivor; each
member's balance still equals their entries and their lots. Both member rows are locked
first, in id order (the same lock every points change takes), so a merge and an order
paid for either member at the same moment queue rather than interleave; an order paid for
the merged record after the merge is counted for the survivor (see service.order_changed).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.members import points, profiles, tiers
from selfmart.members.exceptions import MemberInactive
from selfmart.members.schemas import MergeResult
from selfmart.models import (
    Member,
    MemberCoupon,
    MemberOrder,
    MemberPointsLot,
    MemberTier,
    MemberTierChange,
)
from selfmart.orders import customers as orders

#: Profile fields the survivor takes from the merged record when it has none of its own.
_FILLED = ("name", "mobile", "birthday", "card_no", "home_store_id")


async def merge(
    session: AsyncSession, survivor_id: int, merged_id: int, *, reason: str, actor: Actor
) -> MergeResult:
    if survivor_id == merged_id:
        raise ValidationFailed("A member cannot be merged into itself", field="merged_id")
    survivor = await profiles.get(session, survivor_id)
    merged = await profiles.get(session, merged_id)
    _mergeable(survivor, merged)
    # Orders first, before any member lock: a payment holds its order's row and then takes
    # its member's lock, so taking the member locks first could deadlock with it.
    moved_orders = await orders.move_member_orders(
        session, from_member_id=merged.id, to_member_id=survivor.id,
        to_member_no=survivor.member_no,
    )  # fmt: skip
    for member_id in sorted((survivor_id, merged_id)):
        await points.lock(session, member_id)
    # Read again under the lock: what another transaction committed before we got it.
    await session.refresh(survivor)
    await session.refresh(merged)
    _mergeable(survivor, merged)
    now = utcnow()

    moved: dict[str, int] = {}
    followers = (
        ("member_orders", MemberOrder),
        ("coupons", MemberCoupon),
        ("tier_changes", MemberTierChange),
    )
    for key, model in followers:
        result = await session.execute(
            update(model)
            .where(model.member_id == merged.id)
            .values(member_id=survivor.id)
            .execution_options(synchronize_session=False)
        )
        moved[key] = int(result.rowcount or 0)  # type: ignore[attr-defined]

    # Points: expire what is due on both sides first, so only live points move.
    await points.expire_due(session, merged.id, now=now)
    await points.expire_due(session, survivor.id, now=now)
    moved_points = await points.lock(session, merged.id)
    if moved_points > 0:
        await session.execute(
            update(MemberPointsLot)
            .where(MemberPointsLot.member_id == merged.id, MemberPointsLot.remaining > 0)
            .values(member_id=survivor.id)
            .execution_options(synchronize_session=False)
        )
        await points.transfer(
            session, merged.id, survivor.id, moved_points, actor=actor, now=now,
            reason=f"merged {merged.member_no} into {survivor.member_no}",
        )  # fmt: skip

    # Profile: the survivor's own values win; the gaps are filled from the merged record.
    filled: list[str] = []
    taken = {f: getattr(merged, f) for f in _FILLED}
    merged.mobile = None
    merged.card_no = None
    await session.flush()  # free the unique mobile and card before the survivor takes them
    for f in _FILLED:
        if getattr(survivor, f) is None and taken[f] is not None:
            setattr(survivor, f, taken[f])
            filled.append(f)
    tags = list(dict.fromkeys([*(survivor.tags or []), *(merged.tags or [])]))
    if tags != list(survivor.tags or []):
        survivor.tags = tags
        filled.append("tags")
    if merged.marketing_consent and not survivor.marketing_consent:
        survivor.marketing_consent = True
        filled.append("marketing_consent")
    merged.status = "merged"
    merged.merged_into_id = survivor.id
    merged.updated_at = now
    survivor.updated_at = now
    await session.flush()

    # Tier: the better of the two, then whatever the combined history qualifies for.
    await _better_tier(session, survivor, merged, actor=actor)
    await tiers.evaluate(session, survivor, reason="merge", allow_down=False, actor=actor)

    outcome = MergeResult(
        survivor_id=survivor.id,
        merged_id=merged.id,
        orders_moved=moved_orders,
        points_moved=moved_points,
        coupons_moved=moved["coupons"],
        fields_filled=filled,
    )
    await audit.record(
        session, actor, "member.merge", "member", survivor.id,
        store_id=survivor.home_store_id,
        after={"merged_id": merged.id, "merged_no": merged.member_no, "orders": moved_orders,
               "points": moved_points, "coupons": moved["coupons"], "filled": filled},
        note=reason, label=survivor.member_no,
    )  # fmt: skip
    await audit.record(
        session, actor, "member.merged", "member", merged.id,
        before={"status": "active"}, after={"status": "merged", "into": survivor.member_no},
        note=reason, label=merged.member_no,
    )  # fmt: skip
    return outcome


def _mergeable(survivor: Member, merged: Member) -> None:
    for m, name in ((survivor, "member_id"), (merged, "merged_id")):
        if m.status in ("erased", "merged"):
            raise MemberInactive(f"Member {m.member_no} is {m.status}", field=name)


async def _better_tier(
    session: AsyncSession, survivor: Member, merged: Member, *, actor: Actor
) -> None:
    if merged.tier_id is None or merged.tier_id == survivor.tier_id:
        return
    theirs = await session.get(MemberTier, merged.tier_id)
    ours = await session.get(MemberTier, survivor.tier_id) if survivor.tier_id else None
    if theirs is None or (ours is not None and ours.rank >= theirs.rank):
        return
    standing = await tiers.standing(
        session, survivor.id, window_days=(await points.program(session)).tier_window_days
    )
    session.add(
        MemberTierChange(
            member_id=survivor.id,
            from_tier_id=survivor.tier_id,
            to_tier_id=theirs.id,
            direction="upgrade",
            reason="merge",
            spend_fen=standing.spend_fen,
            order_count=standing.order_count,
            actor_type=actor.kind,
            actor_name=actor.name,
            occurred_at=utcnow(),
        )
    )
    survivor.tier_id = theirs.id
    await session.flush()
