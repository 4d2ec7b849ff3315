"""A member's purchase history as the profile shows it: orders, spend, favourite products,
first and last visit, and their RFM scores."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.members import segments
from selfmart.members.schemas import MemberOrderRead, ProductBoughtRead, PurchaseHistory
from selfmart.models import MemberOrder
from selfmart.orders import customers as orders


async def summary(session: AsyncSession, member_id: int) -> PurchaseHistory:
    """Counted from the programme's record of paid orders (net of refunds)."""
    n, spend, first, last = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(MemberOrder.net_fen), 0),
                func.min(MemberOrder.paid_at),
                func.max(MemberOrder.paid_at),
            ).where(MemberOrder.member_id == member_id, MemberOrder.net_fen > 0)
        )
    ).one()
    favourites = await orders.favourite_products(session, member_id)
    return PurchaseHistory(
        orders=int(n),
        spend_fen=int(spend),
        average_fen=int(spend) // int(n) if n else 0,
        first_visit_at=first,
        last_visit_at=last,
        favourite_products=[ProductBoughtRead.model_validate(p) for p in favourites],
        rfm=await segments.member_scores(session, member_id),
    )


async def order_page(
    session: AsyncSession, member_id: int, *, offset: int, limit: int
) -> tuple[list[MemberOrderRead], int]:
    rows, total = await orders.member_orders(session, member_id, offset=offset, limit=limit)
    return [MemberOrderRead.model_validate(r) for r in rows], total
