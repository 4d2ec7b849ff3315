"""What an identified member's order costs: the member the terminal's token names, their tier's
discount, and a quote the terminal shows before the customer pays (the same pricing the order
will get, with what being a member saved per line and in total, any coupon and any points
spent).

The rule, exactly (docs/members-at-the-terminal.md): a line whose product has a member price
below the store's price is sold at the member price and gets no tier discount; every other
line gets the tier's discount of its list amount (price x quantity), rounded half up to the
fen. A tier with `member_prices` off pays no member prices: every line gets its discount.
A coupon comes off after that (members.coupons), then points (members.redeem).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.members import identify, redeem
from selfmart.members.exceptions import MemberInactive, MemberTokenInvalid
from selfmart.models import Member, MemberTier
from selfmart.orders import pricing
from selfmart.orders.pricing import PricedOrder
from selfmart.orders.schemas import IntakeLine


@dataclass(frozen=True, slots=True)
class Checkout:
    """The member an order is for, as pricing needs them."""

    member_id: int
    member_no: str
    tier_name: str | None
    discount_bp: int
    #: products' member prices apply (every member without an active tier that turns them off)
    member_prices: bool = True


async def checkout(session: AsyncSession, member: Member) -> Checkout:
    if member.status != "active":
        raise MemberInactive(field="member")
    tier = await session.get(MemberTier, member.tier_id) if member.tier_id else None
    active = tier is not None and tier.is_active
    bp = tier.discount_bp if tier is not None and active else 0
    prices = tier.member_prices if tier is not None and active else True
    return Checkout(member.id, member.member_no, tier.name if tier else None, bp, prices)


async def terms_for(session: AsyncSession, member_id: int | None) -> tuple[int, bool]:
    """The tier discount (basis points) an order of `member_id` gets now and whether it pays
    member prices: (0, True) for no member, an inactive member, or no tier (the orders domain
    re-prices substituted lines with them)."""
    member = await session.get(Member, member_id) if member_id is not None else None
    if member is None or member.status != "active":
        return 0, True
    terms = await checkout(session, member)
    return terms.discount_bp, terms.member_prices


async def for_token(
    session: AsyncSession, token: str, *, terminal_id: int, at: datetime | None = None
) -> tuple[Member, Checkout]:
    """The member a terminal's token names (active), with their tier's discount."""
    member_id = identify.read_member_token(token, terminal_id=terminal_id, at=at)
    member = await session.get(Member, member_id)
    if member is None:
        raise MemberTokenInvalid(field="member.token")
    return member, await checkout(session, member)


async def price_for(
    session: AsyncSession,
    *,
    store_id: int,
    lines: list[IntakeLine],
    member: Checkout | None,
    legacy_member: bool,
    terminal_total_fen: int | None,
) -> PricedOrder:
    return await pricing.price(
        session,
        store_id=store_id,
        lines=lines,
        member=member is not None or legacy_member,
        terminal_total_fen=terminal_total_fen,
        discount_bp=member.discount_bp if member is not None else 0,
        member_prices=member.member_prices if member is not None else True,
    )


def present(
    priced: PricedOrder, spend: redeem.Plan | None, coupon_code: str | None = None
) -> dict[str, Any]:
    """A quote as the terminal shows it."""
    return {
        "lines": [
            {
                "line_no": ln.line_no,
                "product_id": ln.product_id,
                "barcode": ln.barcode,
                "name": ln.name,
                "quantity": ln.quantity,
                "list_price_fen": ln.list_price_fen,
                "unit_price_fen": ln.unit_price_fen,
                "price_source": ln.price_source,
                "tier_discount_fen": ln.tier_discount_fen,
                "coupon_fen": ln.coupon_fen,
                "points_fen": ln.points_fen,
                "amount_fen": ln.amount_fen,
                "saved_fen": ln.member_saving_fen,
            }
            for ln in priced.lines
        ],
        "subtotal_fen": priced.subtotal_fen,
        "saved_fen": priced.member_saving_fen,
        "coupon_code": coupon_code,
        "coupon_fen": priced.coupon_fen,
        "points": spend.points if spend else 0,
        "points_fen": priced.points_fen,
        "total_fen": priced.total_fen,
    }
