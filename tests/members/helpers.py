"""Builders for members: members, tiers, and orders of a member paid and refunded through the
orders domain's own functions (so the hook in orders is what moves points and tiers)."""

from __future__ import annotations

import secrets
import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor
from selfmart.iam.permissions import Perm
from selfmart.kit.time import utcnow
from selfmart.members import points
from selfmart.models import Member, MemberTier, Order, Store
from selfmart.orders import refunds
from selfmart.orders import service as orders
from selfmart.orders.schemas import ManualPaymentBody
from tests.orders.builders import make_order, make_product

ADMIN = Actor(kind="user", id=1, name="admin", permissions=frozenset(Perm), store_ids=None)


def mobile() -> str:
    return f"139{secrets.randbelow(10**8):08d}"


async def make_member(
    session: AsyncSession,
    *,
    name: str = "张三丰",
    mobile_no: str | None = None,
    tier: MemberTier | None = None,
    birthday: date | None = None,
    tags: list[str] | None = None,
    status: str = "active",
) -> Member:
    now = utcnow()
    member = Member(
        member_no=f"T{uuid.uuid4().hex[:10].upper()}",
        name=name,
        mobile=mobile_no or mobile(),
        birthday=birthday,
        tier_id=tier.id if tier else None,
        tags=tags or [],
        status=status,
        registered_at=now,
        updated_at=now,
    )
    session.add(member)
    await session.flush()
    return member


async def make_tier(
    session: AsyncSession,
    rank: int,
    *,
    min_spend_fen: int | None = None,
    min_orders: int | None = None,
    match: str = "all",
    multiplier_pct: int = 100,
) -> MemberTier:
    now = utcnow()
    tier = MemberTier(
        code=f"t{rank}_{uuid.uuid4().hex[:6]}",
        name=f"Tier {rank}",
        rank=rank + 500,  # clear of tiers other tests may have left (ranks are unique)
        min_spend_fen=min_spend_fen,
        min_orders=min_orders,
        match=match,
        points_multiplier_pct=multiplier_pct,
        created_at=now,
        updated_at=now,
    )
    session.add(tier)
    await session.flush()
    return tier


async def set_program(session: AsyncSession, **values: object) -> None:
    rules = await points.program(session)
    for k, v in values.items():
        setattr(rules, k, v)
    await session.flush()


async def paid_order(
    session: AsyncSession, store: Store, member: Member | None, amount_fen: int
) -> Order:
    """An order of one line worth `amount_fen`, paid by hand (apply_payment runs the hook)."""
    product = await make_product(session, price_fen=amount_fen, stores=[store])
    order = await make_order(session, store, [(product, 1)])
    if member is not None:
        order.member_id = member.id
        order.member_no = member.member_no
        await session.flush()
    await orders.record_manual_payment(session, order, ManualPaymentBody(), actor=ADMIN)
    return order


async def refund_money(session: AsyncSession, order: Order, amount_fen: int) -> None:
    """Give back part of the money (the goods stay sold)."""
    await refunds.refund_amount(
        session, order, amount_fen, reason="price difference", note=None, reference=None,
        actor=ADMIN,
    )  # fmt: skip


async def refund_all(session: AsyncSession, order: Order) -> None:
    from selfmart.orders.schemas import RefundBody

    await refunds.refund(session, order, RefundBody(full=True, reason="returned"), actor=ADMIN)


async def balance(session: AsyncSession, member: Member) -> int:
    await session.refresh(member)
    return member.points_balance
