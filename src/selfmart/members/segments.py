"""Segments: saved filters that pick members for an offer (tier, home store, tags, spend and
orders over a window, last visit, birthday month, marketing consent, RFM scores), evaluated
in SQL each time they are used; and RFM scoring itself.

RFM scores members who bought within the window: recency (days since the last paid order),
frequency (paid orders) and money (net spend), each cut into quintiles 1-5 among those
members with NTILE(5) — 5 is the most recent, most frequent, biggest spender. Ties are split
by member id so a member's scores do not change between two reads of the same data.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    and_,
    cast,
    exists,
    extract,
    false,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import AlreadyExists, NotFound
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.members.schemas import RfmScores, SegmentBody, SegmentPreview, SegmentRules
from selfmart.models import Member, MemberOrder, MemberSegment


class SegmentNotFound(NotFound):
    code, message = "segment_not_found", "No such segment"


class SegmentTaken(AlreadyExists):
    code, message = "segment_taken", "Another segment has this name"


def stats(window_days: int, now: datetime) -> Subquery:
    """Per member with a paid order in the window: spend, orders, last visit."""
    since = now - timedelta(days=window_days)
    return (
        select(
            MemberOrder.member_id.label("member_id"),
            func.sum(MemberOrder.net_fen).label("spend_fen"),
            func.count().label("orders"),
            func.max(MemberOrder.paid_at).label("last_paid_at"),
        )
        .where(MemberOrder.paid_at >= since, MemberOrder.net_fen > 0)
        .group_by(MemberOrder.member_id)
        .subquery("member_stats")
    )


def rfm(window_days: int, now: datetime) -> Subquery:
    """Each member with a paid order in the window, with their R, F and M quintiles."""
    s = stats(window_days, now)
    return select(
        s.c.member_id,
        s.c.spend_fen,
        s.c.orders,
        s.c.last_paid_at,
        func.ntile(5).over(order_by=(s.c.last_paid_at, s.c.member_id)).label("r"),
        func.ntile(5).over(order_by=(s.c.orders, s.c.member_id)).label("f"),
        func.ntile(5).over(order_by=(s.c.spend_fen, s.c.member_id)).label("m"),
    ).subquery("member_rfm")


def has_any_tag(dialect: str, tags: list[str]) -> ColumnElement[bool]:
    """The member's JSON tag list holds one of `tags` (in SQL, so paging stays right)."""
    if not tags:
        return false()
    if dialect == "postgresql":
        return cast(Member.tags, postgresql.JSONB).op("?|")(
            cast(postgresql.array(tags), postgresql.ARRAY(postgresql.TEXT))
        )
    each = func.json_each(Member.tags).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value.in_(tags)))


def conditions(rules: SegmentRules, *, dialect: str, now: datetime) -> list[ColumnElement[bool]]:
    """SQL conditions on `members` for `rules` (each a column test or an id IN subquery)."""
    out: list[ColumnElement[bool]] = []
    if rules.tier_ids:
        out.append(Member.tier_id.in_(rules.tier_ids))
    if rules.store_ids:
        out.append(Member.home_store_id.in_(rules.store_ids))
    if rules.tags:
        out.append(has_any_tag(dialect, rules.tags))
    if rules.birthday_month is not None:
        out.append(extract("month", Member.birthday) == rules.birthday_month)
    if rules.marketing_consent_only:
        out.append(Member.marketing_consent.is_(True))
    s = stats(rules.window_days, now)
    wants: list[ColumnElement[bool]] = []
    if rules.min_spend_fen is not None:
        wants.append(s.c.spend_fen >= rules.min_spend_fen)
    if rules.max_spend_fen is not None:
        wants.append(s.c.spend_fen <= rules.max_spend_fen)
    if rules.min_orders is not None:
        wants.append(s.c.orders >= rules.min_orders)
    if rules.visited_within_days is not None:
        wants.append(s.c.last_paid_at >= now - timedelta(days=rules.visited_within_days))
    if wants:
        out.append(Member.id.in_(select(s.c.member_id).where(and_(*wants))))
    if rules.not_visited_days is not None:
        # Lapsed: no paid order in the last N days (members who never bought included).
        recent = select(MemberOrder.member_id).where(
            MemberOrder.paid_at >= now - timedelta(days=rules.not_visited_days),
            MemberOrder.net_fen > 0,
        )
        out.append(Member.id.not_in(recent))
    if rules.rfm is not None and (rules.rfm.r or rules.rfm.f or rules.rfm.m):
        q = rfm(rules.window_days, now)
        tests = [
            getattr(q.c, k).in_(v)
            for k, v in (("r", rules.rfm.r), ("f", rules.rfm.f), ("m", rules.rfm.m))
            if v
        ]
        out.append(Member.id.in_(select(q.c.member_id).where(and_(*tests))))
    return out


def member_ids(rules: SegmentRules, *, dialect: str, now: datetime) -> Select[int]:
    """The ids of the active members a segment picks, in id order."""
    return (
        select(Member.id)
        .where(Member.status == "active", *conditions(rules, dialect=dialect, now=now))
        .order_by(Member.id)
    )


async def preview(session: AsyncSession, rules: SegmentRules) -> SegmentPreview:
    """How many active members `rules` pick now, and the first 20 of them (masked)."""
    from selfmart.members import profiles

    ids = member_ids(rules, dialect=dialect_of(session), now=utcnow())
    picked = list((await session.scalars(ids.limit(20))).all())
    sample = [await profiles.read_one(session, await profiles.get(session, i)) for i in picked]
    return SegmentPreview(count=await count(session, rules), sample=sample)


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def count(session: AsyncSession, rules: SegmentRules, *, now: datetime | None = None) -> int:
    stmt = member_ids(rules, dialect=dialect_of(session), now=now or utcnow()).order_by(None)
    return int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


async def member_scores(
    session: AsyncSession, member_id: int, *, window_days: int = 365, now: datetime | None = None
) -> RfmScores | None:
    q = rfm(window_days, now or utcnow())
    row = (await session.execute(select(q).where(q.c.member_id == member_id))).first()
    if row is None:
        return None
    return RfmScores(
        r=int(row.r), f=int(row.f), m=int(row.m), window_days=window_days,
        spend_fen=int(row.spend_fen), orders=int(row.orders), last_paid_at=row.last_paid_at,
    )  # fmt: skip


async def rfm_grid(
    session: AsyncSession, *, window_days: int = 365, now: datetime | None = None
) -> list[dict[str, int]]:
    """How many members hold each (R, F) pair, with their spend: the RFM overview."""
    q = rfm(window_days, now or utcnow())
    rows = (
        await session.execute(
            select(q.c.r, q.c.f, func.count(), func.sum(q.c.spend_fen))
            .group_by(q.c.r, q.c.f)
            .order_by(q.c.r, q.c.f)
        )
    ).all()
    return [{"r": int(r), "f": int(f), "members": int(n), "spend_fen": int(s or 0)}
            for r, f, n, s in rows]  # fmt: skip


# --- saved segments ---


async def get(session: AsyncSession, segment_id: int) -> MemberSegment:
    found = await session.get(MemberSegment, segment_id)
    if found is None:
        raise SegmentNotFound(field="segment_id")
    return found


async def listing(session: AsyncSession) -> list[MemberSegment]:
    return list((await session.scalars(select(MemberSegment).order_by(MemberSegment.name))).all())


async def _flush(session: AsyncSession) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise SegmentTaken(field="name") from None


async def create(session: AsyncSession, body: SegmentBody, *, actor: Actor) -> MemberSegment:
    now = utcnow()
    segment = MemberSegment(
        name=body.name, description=body.description,
        rules=body.rules.model_dump(mode="json", exclude_none=True),
        created_by=actor.name, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(segment)
    await _flush(session)
    await audit.record(
        session, actor, "member_segment.create", "member_segment", segment.id,
        after={"name": segment.name, "rules": segment.rules}, label=segment.name,
    )  # fmt: skip
    return segment


async def update(
    session: AsyncSession, segment: MemberSegment, body: SegmentBody, *, actor: Actor
) -> MemberSegment:
    before: dict[str, Any] = {"name": segment.name, "rules": segment.rules}
    segment.name = body.name
    segment.description = body.description
    segment.rules = body.rules.model_dump(mode="json", exclude_none=True)
    segment.updated_at = utcnow()
    await _flush(session)
    await audit.record(
        session, actor, "member_segment.update", "member_segment", segment.id,
        before=before, after={"name": segment.name, "rules": segment.rules}, label=segment.name,
    )  # fmt: skip
    return segment


async def delete(session: AsyncSession, segment: MemberSegment, *, actor: Actor) -> None:
    await audit.record(
        session, actor, "member_segment.delete", "member_segment", segment.id,
        before={"name": segment.name, "rules": segment.rules}, label=segment.name,
    )  # fmt: skip
    await session.delete(segment)
    await session.flush()


def rules_of(segment: MemberSegment) -> SegmentRules:
    return SegmentRules.model_validate(segment.rules)
