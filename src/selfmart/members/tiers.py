"""Tiers: their configuration, where a member stands (net spend and paid orders over the
programme's rolling window), moving members up or down, the tier history, and telling the
member by SMS through the notify domain (sent after commit)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Table, bindparam, case, func, insert, select, update
from sqlalchemy import cast as cast_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.jobs import outbox
from selfmart.kit.money import fen_to_yuan
from selfmart.kit.time import utcnow
from selfmart.members import messages, points
from selfmart.members.exceptions import TierInUse, TierNotFound, TierTaken
from selfmart.members.schemas import ProgramUpdate, TierCreate, TierUpdate
from selfmart.models import (
    Member,
    MemberMessage,
    MemberOrder,
    MemberPointsEntry,
    MemberProgram,
    MemberTier,
    MemberTierChange,
)
from selfmart.notify import service as notify

log = logging.getLogger(__name__)

#: the outbox topic that texts the nightly's tier changes, and how many changes an event holds
TIER_SMS_TOPIC = "members.tier_sms"
SMS_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Standing:
    spend_fen: int
    order_count: int


def qualifies(tier: MemberTier, standing: Standing) -> bool:
    """Whether `standing` meets the tier's thresholds: each set threshold is met at exactly
    its value ("all": every one, "any": one of them); a tier with none is the entry tier."""
    checks = []
    if tier.min_spend_fen is not None:
        checks.append(standing.spend_fen >= tier.min_spend_fen)
    if tier.min_orders is not None:
        checks.append(standing.order_count >= tier.min_orders)
    if not checks:
        return True
    return all(checks) if tier.match == "all" else any(checks)


def best_tier(tiers: list[MemberTier], standing: Standing) -> MemberTier | None:
    """The highest-ranked active tier the standing meets."""
    for tier in sorted(tiers, key=lambda t: -t.rank):
        if tier.is_active and qualifies(tier, standing):
            return tier
    return None


async def active_tiers(session: AsyncSession) -> list[MemberTier]:
    return list((await session.scalars(select(MemberTier).order_by(MemberTier.rank))).all())


async def standing(
    session: AsyncSession, member_id: int, *, window_days: int, now: datetime | None = None
) -> Standing:
    """Net spend and the number of orders with money kept, paid within the window."""
    since = (now or utcnow()) - timedelta(days=window_days)
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(MemberOrder.net_fen), 0),
                func.coalesce(func.sum(case((MemberOrder.net_fen > 0, 1), else_=0)), 0),
            ).where(MemberOrder.member_id == member_id, MemberOrder.paid_at >= since)
        )
    ).one()
    return Standing(int(row[0]), int(row[1]))


async def evaluate(
    session: AsyncSession,
    member: Member,
    *,
    reason: str,
    allow_down: bool,
    actor: Actor,
    order_id: int | None = None,
    now: datetime | None = None,
    tiers: list[MemberTier] | None = None,
    rules: MemberProgram | None = None,
) -> MemberTierChange | None:
    """Move the member to the tier they qualify for now: up always, down only when
    `allow_down`. Records the change, audits it and tells the member; None when unchanged."""
    now = now or utcnow()
    rules = rules or await points.program(session)
    tiers = tiers if tiers is not None else await active_tiers(session)
    where = await standing(session, member.id, window_days=rules.tier_window_days, now=now)
    target = best_tier(tiers, where)
    by_id = {t.id: t for t in tiers}
    current = by_id.get(member.tier_id) if member.tier_id is not None else None
    current_rank = current.rank if current is not None else -1
    target_rank = target.rank if target is not None else -1
    if target_rank == current_rank:
        return None
    if target_rank < current_rank and not allow_down:
        return None
    direction = "upgrade" if target_rank > current_rank else "downgrade"
    change = MemberTierChange(
        member_id=member.id,
        from_tier_id=member.tier_id,
        to_tier_id=target.id if target else None,
        direction=direction,
        reason=reason,
        order_id=order_id,
        spend_fen=where.spend_fen,
        order_count=where.order_count,
        actor_type=actor.kind,
        actor_name=actor.name,
        occurred_at=now,
    )
    session.add(change)
    member.tier_id = target.id if target else None
    member.updated_at = now
    await session.flush()
    await audit.record(
        session,
        actor,
        f"member.tier_{direction}",
        "member",
        member.id,
        before={"tier": current.code if current else None},
        after={"tier": target.code if target else None},
        note=reason,
        label=member.member_no,
    )
    await _tell(session, member, target, direction, where)
    return change


def tier_message(tier: MemberTier, direction: str, where: Standing) -> tuple[str, str]:
    verb = "升级" if direction == "upgrade" else "调整"
    return (
        f"会员等级{verb}为{tier.name}",
        f"您的会员等级已{verb}为「{tier.name}」"
        f"（近期消费 ¥{fen_to_yuan(where.spend_fen)}，{where.order_count} 笔订单）。",
    )


async def _tell(
    session: AsyncSession,
    member: Member,
    tier: MemberTier | None,
    direction: str,
    where: Standing,
) -> None:
    """A message on the member's page, and an SMS (through notify's provider interface,
    after commit)."""
    if member.status != "active" or tier is None:
        return
    title, body = tier_message(tier, direction, where)
    await messages.post(session, member.id, kind="tier_change", title=title, body=body)
    if member.mobile:
        await _text(session, member.id, member.mobile, tier, direction, where)


async def _text(
    session: AsyncSession,
    member_id: int,
    mobile: str,
    tier: MemberTier,
    direction: str,
    where: Standing,
) -> None:
    title, body = tier_message(tier, direction, where)
    try:
        await notify.send(
            session,
            kind=f"member.tier_{direction}",
            title=title,
            body=body,
            channels=[],
            addresses=[("sms", mobile)],
            data={"member_id": member_id, "tier_id": tier.id},
        )
    except LookupError:  # no SMS channel configured: the history still holds the change
        log.info("no sms channel; member %s not told of their tier change", member_id)


async def history(session: AsyncSession, member_id: int) -> list[MemberTierChange]:
    return list(
        (
            await session.scalars(
                select(MemberTierChange)
                .where(MemberTierChange.member_id == member_id)
                .order_by(MemberTierChange.id.desc())
                .limit(200)
            )
        ).all()
    )


async def reevaluate_all(
    session: AsyncSession,
    *,
    actor: Actor,
    now: datetime | None = None,
    after_id: int = 0,
    limit: int = 50_000,
) -> tuple[int, int]:
    """One batch of the nightly re-evaluation (active members with id > after_id): upgrades
    always, downgrades when the programme allows them. Returns (last id seen, changes made).

    Set-based, as `evaluate` is for one member: the batch's members in one query, their
    standing (net spend and orders with money kept, paid within the window) in one aggregate,
    the tier each qualifies for chosen in memory, and only the changed members written — their
    tier in one executemany UPDATE, the history rows, audit entries and page messages each in
    one INSERT; their SMS queued as outbox events, sent after commit (`text_changes`)."""
    now = now or utcnow()
    rules = await points.program(session)
    tiers = await active_tiers(session)
    batch = (
        await session.execute(
            select(Member.id, Member.tier_id)
            .where(Member.id > after_id, Member.status == "active")
            .order_by(Member.id)
            .limit(limit)
        )
    ).all()
    if not batch:
        return 0, 0
    first, last = int(batch[0][0]), int(batch[-1][0])
    since = now - timedelta(days=rules.tier_window_days)
    counted = (
        await session.execute(
            select(
                MemberOrder.member_id,
                cast_(func.sum(MemberOrder.net_fen), BigInteger),
                cast_(func.sum(case((MemberOrder.net_fen > 0, 1), else_=0)), BigInteger),
            )
            .where(
                MemberOrder.member_id >= first,
                MemberOrder.member_id <= last,
                MemberOrder.paid_at >= since,
            )
            .group_by(MemberOrder.member_id)
        )
    ).all()
    standings = {m: (spend, n) for m, spend, n in counted}
    by_id = {t.id: t for t in tiers}
    rank_of = {t.id: t.rank for t in tiers}
    pick = _picker(tiers)
    down = rules.downgrades_enabled
    moves: list[tuple[int, MemberTier | None, MemberTier | None, Standing]] = []
    for member_id, tier_id in batch:
        spend, n = standings.get(member_id, (0, 0))
        target_id, target_rank = pick(spend, n)
        current_rank = rank_of.get(tier_id, -1) if tier_id is not None else -1
        if target_rank == current_rank or (target_rank < current_rank and not down):
            continue
        target = by_id[target_id] if target_id is not None else None
        current = by_id.get(tier_id) if tier_id is not None else None
        moves.append((member_id, current, target, Standing(spend, n)))
    if moves:
        await _apply_moves(session, moves, actor=actor, now=now)
    return last, len(moves)


def _picker(tiers: list[MemberTier]) -> Callable[[int, int], tuple[int | None, int]]:
    """`best_tier` over plain values, for half a million members a night: (tier id, rank) of
    the highest active tier that spend and order count meet, (None, -1) for none."""
    rules = [
        (t.id, t.rank, t.min_spend_fen, t.min_orders, t.match == "all")
        for t in sorted(tiers, key=lambda t: -t.rank)
        if t.is_active
    ]

    def pick(spend: int, n: int) -> tuple[int | None, int]:
        for tier_id, rank, min_spend, min_orders, match_all in rules:
            if min_spend is None and min_orders is None:
                return tier_id, rank
            spend_ok = min_spend is not None and spend >= min_spend
            orders_ok = min_orders is not None and n >= min_orders
            if match_all:
                if (min_spend is None or spend_ok) and (min_orders is None or orders_ok):
                    return tier_id, rank
            elif spend_ok or orders_ok:
                return tier_id, rank
        return None, -1

    return pick


async def _apply_moves(
    session: AsyncSession,
    moves: list[tuple[int, MemberTier | None, MemberTier | None, Standing]],
    *,
    actor: Actor,
    now: datetime,
) -> None:
    """Write the nightly's tier changes in bulk (see `reevaluate_all`)."""
    members_table = cast(Table, Member.__table__)
    await session.execute(
        update(members_table)
        .where(members_table.c.id == bindparam("m_id"))
        .values(tier_id=bindparam("m_tier"), updated_at=now),
        [{"m_id": m, "m_tier": to.id if to else None} for m, _f, to, _w in moves],
    )
    changes: list[dict[str, Any]] = []
    directions: list[str] = []
    for m, was, to, where in moves:
        up = (to.rank if to else -1) > (was.rank if was else -1)
        directions.append("upgrade" if up else "downgrade")
        changes.append(
            {
                "member_id": m, "from_tier_id": was.id if was else None,
                "to_tier_id": to.id if to else None,
                "direction": directions[-1], "reason": "nightly",
                "order_id": None, "spend_fen": where.spend_fen, "order_count": where.order_count,
                "actor_type": actor.kind, "actor_name": actor.name, "occurred_at": now,
            }
        )  # fmt: skip
    change_ids = (
        await session.scalars(insert(MemberTierChange).returning(MemberTierChange.id), changes)
    ).all()
    for direction in ("upgrade", "downgrade"):
        await audit.record_many(
            session, actor, f"member.tier_{direction}", "member",
            [
                audit.Change(
                    entity_id=c["member_id"],
                    before={"tier": _code(moves[i][1])}, after={"tier": _code(moves[i][2])},
                )
                for i, c in enumerate(changes)
                if c["direction"] == direction
            ],
            note="nightly",
        )  # fmt: skip
    told = [(m, to, d, where) for (m, _f, to, where), d in zip(moves, directions, strict=True)
            if to is not None]  # fmt: skip
    if not told:
        return
    await session.execute(
        insert(MemberMessage),
        [
            messages.row(m, "tier_change", *tier_message(to, d, where), order_id=None, now=now)
            for m, to, d, where in told
        ],
    )
    # The SMS go out from an outbox handler after commit (a chunk of changes per event): one
    # notification per member costs more than the whole re-evaluation of their batch.
    told_ids = [int(i) for i, to in zip(change_ids, (mv[2] for mv in moves), strict=True) if to]
    for i in range(0, len(told_ids), SMS_CHUNK):
        await outbox.enqueue(session, TIER_SMS_TOPIC, {"change_ids": told_ids[i : i + SMS_CHUNK]})


async def text_changes(session: AsyncSession, change_ids: list[int]) -> int:
    """The SMS of these tier changes (the outbox handler of TIER_SMS_TOPIC): to each member
    still active with a mobile. Returns how many were queued."""
    rows = (
        await session.execute(
            select(MemberTierChange, Member.mobile)
            .join(Member, Member.id == MemberTierChange.member_id)
            .where(
                MemberTierChange.id.in_(change_ids),
                Member.status == "active",
                Member.mobile.is_not(None),
                MemberTierChange.to_tier_id.is_not(None),
            )
            .order_by(MemberTierChange.id)
        )
    ).all()
    by_id = {t.id: t for t in await active_tiers(session)}
    sent = 0
    for change, mobile in rows:
        tier = by_id.get(change.to_tier_id) if change.to_tier_id is not None else None
        if tier is None:
            continue
        where = Standing(change.spend_fen, change.order_count)
        await _text(session, change.member_id, str(mobile), tier, change.direction, where)
        sent += 1
    return sent


def _code(tier: MemberTier | None) -> str | None:
    return tier.code if tier is not None else None


async def grant_birthday_points(
    session: AsyncSession, *, actor: Actor, zone: str, now: datetime | None = None
) -> int:
    """Give each active member whose birthday month it is (in the chain's zone) their tier's
    birthday points, once in that month: any night of the month catches up a missed one, and
    a second run finds the entry and gives nothing. Returns how many members were given."""
    now = now or utcnow()
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    month_start = datetime.combine(date(today.year, today.month, 1), time(), tz)
    given = (
        select(MemberPointsEntry.member_id)
        .where(MemberPointsEntry.kind == "birthday", MemberPointsEntry.occurred_at >= month_start)
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            select(Member.id, MemberTier.birthday_points)
            .join(MemberTier, MemberTier.id == Member.tier_id)
            .where(
                Member.status == "active",
                Member.birthday.is_not(None),
                MemberTier.birthday_points > 0,
                Member.id.not_in(given),
            )
            .order_by(Member.id)
        )
    ).all()
    # The month is compared in Python: SQLite and PostgreSQL extract it from a date alike, but
    # the birthday column is small and this runs once a night.
    count = 0
    for member_id, amount in rows:
        member = await session.get(Member, member_id)
        if member is None or member.birthday is None or member.birthday.month != today.month:
            continue
        await points.award(
            session, member_id, int(amount), kind="birthday", actor=actor, now=now,
            reason=f"birthday {today.year}",
        )  # fmt: skip
        count += 1
    return count


# --- configuration ---


async def get_tier(session: AsyncSession, tier_id: int) -> MemberTier:
    tier = await session.get(MemberTier, tier_id)
    if tier is None:
        raise TierNotFound(field="tier_id")
    return tier


async def create_tier(session: AsyncSession, body: TierCreate, *, actor: Actor) -> MemberTier:
    now = utcnow()
    tier = MemberTier(**body.model_dump(), created_at=now, updated_at=now)
    session.add(tier)
    await _flush_unique(session)
    await audit.record(
        session, actor, "member_tier.create", "member_tier", tier.id,
        after=body.model_dump(), label=tier.name,
    )  # fmt: skip
    return tier


async def update_tier(
    session: AsyncSession, tier: MemberTier, body: TierUpdate, *, actor: Actor
) -> MemberTier:
    changes = body.model_dump(exclude_unset=True)
    before = {k: getattr(tier, k) for k in changes}
    for k, v in changes.items():
        setattr(tier, k, v)
    tier.updated_at = utcnow()
    await _flush_unique(session)
    await audit.record(
        session, actor, "member_tier.update", "member_tier", tier.id,
        before=before, after=changes, label=tier.name,
    )  # fmt: skip
    return tier


async def delete_tier(session: AsyncSession, tier: MemberTier, *, actor: Actor) -> None:
    held = await session.scalar(select(func.count()).where(Member.tier_id == tier.id))
    if held:
        raise TierInUse(f"{held} member(s) hold this tier", field="tier_id")
    await audit.record(
        session, actor, "member_tier.delete", "member_tier", tier.id,
        before={"code": tier.code, "name": tier.name}, label=tier.name,
    )  # fmt: skip
    await session.delete(tier)
    await session.flush()


async def _flush_unique(session: AsyncSession) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise TierTaken(field="code") from None


async def update_program(
    session: AsyncSession, body: ProgramUpdate, *, actor: Actor
) -> MemberProgram:
    rules = await points.program(session)
    changes = body.model_dump(exclude_unset=True)
    before = {k: getattr(rules, k) for k in changes}
    for k, v in changes.items():
        setattr(rules, k, v)
    rules.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session, actor, "member_program.update", "member_program", 1,
        before=before, after=changes, label="member programme",
    )  # fmt: skip
    return rules
