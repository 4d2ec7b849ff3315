"""A member's own page (/my-member on a phone): sign in with an SMS code, then their orders,
points and history, tier and what the next one needs and how it changed, their messages, and
the dynamic member code to show at a terminal.

A sign-in gives a session token (itsdangerous, keyed from SELFMART_SECRET_KEY, valid
MEMBER_SESSION_TTL) that the page sends as `X-Member-Session`; it names the member and when it
was issued, and every request checks that the member is still active.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import segno
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.config import get_settings
from selfmart.iam.actor import Actor
from selfmart.kit.ratelimit import RateLimiter
from selfmart.kit.time import utcnow
from selfmart.members import coupons, identify, messages, points, redeem, tiers
from selfmart.members import service as members
from selfmart.members.exceptions import PortalSessionInvalid
from selfmart.members.profiles import mask_mobile, mask_name
from selfmart.models import Member, MemberTier, Order, Store

MEMBER_SESSION_TTL = timedelta(days=7)
_SALT = "selfmart.members.portal-session.v1"


def member_actor(member: Member) -> Actor:
    """A member acting on their own record (the audit log's actor)."""
    return Actor(kind="member", id=member.id, name=member.member_no, store_ids=frozenset())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key.get_secret_value(), salt=_SALT)


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    expires_at: datetime


async def sign_in(
    session: AsyncSession,
    mobile: str,
    code: str,
    *,
    limiter: RateLimiter | None,
    now: datetime | None = None,
) -> SignedIn:
    now = now or utcnow()
    member = await identify.by_sms_code(
        session, mobile, code, purpose="portal", limiter=limiter, now=now
    )
    await audit.record(
        session, member_actor(member), "member.portal_sign_in", "member", member.id,
        label=member.member_no,
    )  # fmt: skip
    token = str(_serializer().dumps({"m": member.id}))
    return SignedIn(token=token, expires_at=now + MEMBER_SESSION_TTL)


async def member_of(session: AsyncSession, token: str | None) -> Member:
    """The active member a session token names; 401 member_session_invalid otherwise."""
    if not token:
        raise PortalSessionInvalid()
    try:
        doc = _serializer().loads(token, max_age=int(MEMBER_SESSION_TTL.total_seconds()))
    except (BadSignature, SignatureExpired):
        raise PortalSessionInvalid() from None
    member_id = doc.get("m") if isinstance(doc, dict) else None
    member = await session.get(Member, member_id) if isinstance(member_id, int) else None
    if member is None or member.status != "active":
        raise PortalSessionInvalid()
    return member


async def overview(session: AsyncSession, member: Member) -> dict[str, Any]:
    """Who they are (masked), their points, their tier and what the next tier needs."""
    rules = await points.program(session)
    all_tiers = [t for t in await tiers.active_tiers(session) if t.is_active]
    current = await session.get(MemberTier, member.tier_id) if member.tier_id else None
    where = await tiers.standing(session, member.id, window_days=rules.tier_window_days)
    higher = [t for t in all_tiers if current is None or t.rank > current.rank]
    nxt = min(higher, key=lambda t: t.rank) if higher else None
    next_doc = None
    if nxt is not None:
        next_doc = {
            "name": nxt.name,
            "min_spend_fen": nxt.min_spend_fen,
            "min_orders": nxt.min_orders,
            "match": nxt.match,
            "spend_needed_fen": (
                max(0, nxt.min_spend_fen - where.spend_fen)
                if nxt.min_spend_fen is not None
                else None
            ),
            "orders_needed": (
                max(0, nxt.min_orders - where.order_count) if nxt.min_orders is not None else None
            ),
            "discount_bp": nxt.discount_bp,
        }
    return {
        "member_no": member.member_no,
        "name": mask_name(member.name),
        "mobile": mask_mobile(member.mobile),
        "points_balance": member.points_balance,
        "usable_points": await redeem.usable(session, member.id),
        "redeem_points_per_yuan": rules.redeem_points_per_yuan,
        "tier": (
            {
                "name": current.name,
                "discount_bp": current.discount_bp,
                "points_multiplier_pct": current.points_multiplier_pct,
                "birthday_benefit": current.birthday_benefit,
            }
            if current is not None
            else None
        ),
        "window_days": rules.tier_window_days,
        "spend_fen": where.spend_fen,
        "order_count": where.order_count,
        "next_tier": next_doc,
        "unread_messages": await messages.unread(session, member.id),
    }


async def code(session: AsyncSession, member: Member) -> dict[str, Any]:
    """The dynamic member code now, with its QR code as SVG."""
    found = await identify.current_code(session, member)
    qr = segno.make(found.code, error="m")
    return {
        "code": found.code,
        "step_ends_at": found.step_ends_at,
        "step_seconds": found.step_seconds,
        "qr_svg": qr.svg_inline(scale=6, border=2),
    }


async def orders(
    session: AsyncSession, member: Member, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    total = await session.scalar(select(func.count()).where(Order.member_id == member.id))
    rows = (
        await session.execute(
            select(
                Order.order_no,
                Order.status,
                Order.purchased_at,
                Order.item_count,
                Order.subtotal_fen,
                Order.discount_fen,
                Order.total_fen,
                Order.refunded_fen,
                Store.name.label("store_name"),
                Store.timezone.label("store_timezone"),
            )
            .join(Store, Store.id == Order.store_id)
            .where(Order.member_id == member.id)
            .order_by(Order.purchased_at.desc(), Order.id.desc())
            .offset(offset)
            .limit(limit)
        )
    ).all()
    return [r._asdict() for r in rows], int(total or 0)


async def points_history(
    session: AsyncSession, member: Member, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    rows, total = await members.entries(session, member.id, offset=offset, limit=limit)
    return [
        {
            "kind": e.kind,
            "points": e.points,
            "balance_after": e.balance_after,
            "occurred_at": e.occurred_at,
            "reason": e.reason,
        }
        for e in rows
    ], total


async def message_page(
    session: AsyncSession, member: Member, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int, int]:
    rows, total = await messages.page(session, member.id, offset=offset, limit=limit)
    items = [
        {"id": m.id, "kind": m.kind, "title": m.title, "body": m.body,
         "created_at": m.created_at, "read": m.read_at is not None}
        for m in rows
    ]  # fmt: skip
    return items, total, await messages.unread(session, member.id)


async def read_messages(
    session: AsyncSession, member: Member, message_id: int | None
) -> dict[str, int]:
    """Mark one message (or all) read, audited as the member's own act (a second read marks
    nothing and says so)."""
    marked = await messages.mark_read(session, member.id, message_id)
    await audit.record(
        session, member_actor(member), "member.messages_read", "member", member.id,
        after={"message_id": message_id, "marked": marked}, label=member.member_no,
    )  # fmt: skip
    return {"marked": marked, "unread": await messages.unread(session, member.id)}


async def tier_history(session: AsyncSession, member: Member) -> list[dict[str, Any]]:
    changes = await tiers.history(session, member.id)
    names: dict[int, str] = {
        row.id: row.name for row in await session.execute(select(MemberTier.id, MemberTier.name))
    }
    return [
        {"direction": c.direction, "reason": c.reason, "spend_fen": c.spend_fen,
         "order_count": c.order_count, "occurred_at": c.occurred_at,
         "from_tier": names.get(c.from_tier_id) if c.from_tier_id is not None else None,
         "to_tier": names.get(c.to_tier_id) if c.to_tier_id is not None else None}
        for c in changes
    ]  # fmt: skip


#: What of a coupon its holder is shown (not the ids of templates or orders).
_COUPON_FIELDS = {
    "code", "name", "kind", "amount_off_fen", "percent_off_bp", "max_off_fen", "min_spend_fen",
    "valid_from", "valid_to", "state", "redeemed_at",
}  # fmt: skip


async def coupon_list(session: AsyncSession, member: Member) -> list[dict[str, Any]]:
    """The member's coupons, newest first, each with its state now (usable ones included)."""
    now = utcnow()
    found = await coupons.member_coupons(session, member.id)
    return [coupons.read(c, now).model_dump(include=_COUPON_FIELDS) for c in found]
