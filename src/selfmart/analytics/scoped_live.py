"""A product's or a category's rows of the live tail, summed by the database: what
`summaries.compute` gives for one product (its product and product-member rows) or for one
category with everything below it (its category and category-member rows) on the given store
days, without reading the days' order lines into Python.

Each store day is a row of a table of its local day's bounds in UTC, joined to that day's sold
orders (by index, as in `summaries.compute_sales`) and their lines of the product, or of the
products whose category is in the subtree (the category tree as it is now, as `compute` reads
it), and to the day's refunds with their lines likewise. An order counts once however many of
its lines match, a refund likewise; a member's row counts the member's orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    and_,
    cast,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics.scoped_days import CATEGORY_FIELDS
from selfmart.analytics.summaries import (
    NOT_SALES,
    PRODUCT_FIELDS,
    Key,
    Summary,
    live_days,
    refunded_on,
)
from selfmart.models import Order, OrderLine, Product, Refund, RefundLine


@dataclass(frozen=True)
class Target:
    """One product (`product_id`), or one category (`category_id`) with the categories of its
    subtree (`category_ids`)."""

    product_id: int | None = None
    category_id: int | None = None
    category_ids: tuple[int, ...] = ()


async def compute(
    session: AsyncSession, keys: Iterable[Key], zones: dict[int, str], target: Target
) -> Summary:
    out = Summary(keys=set(keys))
    if not out.keys:
        return out
    postgres = session.get_bind().dialect.name == "postgresql"
    k = live_days(postgres, out.keys, zones)
    product = target.product_id is not None

    def matches(product_id: Any) -> Any:
        if product:
            return product_id == target.product_id
        in_subtree = select(Product.id).where(Product.category_id.in_(target.category_ids))
        return product_id.in_(in_subtree.scalar_subquery())

    # The days' sold orders with their matching lines: on PostgreSQL each day a LATERAL
    # subquery kept whole by OFFSET 0, so that it is an index range scan of orders (store_id,
    # paid_at), as in `summaries.compute_sales`; on SQLite the same conditions as a join.
    lines = (
        Order.id.label("order_id"),
        Order.member_id,
        (OrderLine.quantity - OrderLine.cancelled_qty).label("qty"),
        (OrderLine.amount_fen - OrderLine.cancelled_fen).label("amount"),
    )
    in_day = (
        Order.store_id == k.c.store_id,
        Order.paid_at >= k.c.start,
        Order.paid_at < k.c.end,
        Order.status.not_in(NOT_SALES),
        matches(OrderLine.product_id),
    )
    days = (k.c.store_id.label("k_store"), k.c.day.label("k_day"))
    if postgres:
        day_lines = (
            (select(*lines).join(OrderLine, OrderLine.order_id == Order.id).where(*in_day))
            .offset(0)
            .lateral("day_lines")
        )
        sold = select(*days, *day_lines.c).select_from(k).join(day_lines, true())
    else:
        sold = (
            select(*days, *lines)
            .select_from(k)
            .join(Order, and_(*in_day[:3]))
            .join(OrderLine, OrderLine.order_id == Order.id)
            .where(*in_day[3:])
        )
    sold_rows = sold.subquery("sold")

    def part(tag: str, member: Any, *figures: Any) -> Any:
        return select(
            literal(tag, String).label("tag"),
            sold_rows.c.k_store.label("store_id"),
            sold_rows.c.k_day.label("day"),
            member.label("member_id"),
            *(cast(f, BigInteger).label(f"v{i}") for i, f in enumerate(figures)),
        )

    by_day = (sold_rows.c.k_store, sold_rows.c.k_day)
    zero = literal(0)
    refund_lines = (
        select(
            k.c.store_id,
            k.c.day,
            Refund.id.label("refund_id"),
            RefundLine.quantity,
            RefundLine.amount_fen,
        )
        .select_from(k)
        .join(Refund, refunded_on(k))
        .join(Order, and_(Order.id == Refund.order_id, Order.status.not_in(NOT_SALES)))
        .join(RefundLine, RefundLine.refund_id == Refund.id)
        .join(OrderLine, OrderLine.id == RefundLine.order_line_id)
        .where(matches(OrderLine.product_id))
        .subquery("refunded")
    )
    r = refund_lines
    stmt = union_all(
        part(
            "sold",
            null().cast(Integer),
            func.count(func.distinct(sold_rows.c.order_id)),
            func.sum(sold_rows.c.qty),
            func.sum(sold_rows.c.amount),
        ).group_by(*by_day),
        part("member", sold_rows.c.member_id, func.count(func.distinct(sold_rows.c.order_id)),
             zero, zero)
        .where(sold_rows.c.member_id.is_not(None))
        .group_by(*by_day, sold_rows.c.member_id),
        select(
            literal("refund", String).label("tag"),
            r.c.store_id,
            r.c.day,
            null().cast(Integer).label("member_id"),
            cast(func.count(func.distinct(r.c.refund_id)), BigInteger).label("v0"),
            cast(func.sum(r.c.quantity), BigInteger).label("v1"),
            cast(func.sum(r.c.amount_fen), BigInteger).label("v2"),
        ).group_by(r.c.store_id, r.c.day),
    )  # fmt: skip
    rows = (await session.execute(stmt)).all()
    if product:
        assert target.product_id is not None
        category = await session.scalar(
            select(Product.category_id).where(Product.id == target.product_id)
        )
        _products(out, rows, target.product_id, -1 if category is None else category)
    else:
        assert target.category_id is not None
        _categories(out, rows, target.category_id)
    return out


def _key(r: Any) -> Key:
    return int(r.store_id), date.fromisoformat(str(r.day))


def _products(out: Summary, rows: Sequence[Any], product_id: int, category_id: int) -> None:
    for r in rows:
        store_id, day = _key(r)
        if r.tag == "member":
            key = (store_id, day, product_id, int(r.member_id))
            out.product_members[key] = {"orders": int(r.v0)}
            continue
        row = out.products.setdefault((store_id, day, product_id), dict.fromkeys(PRODUCT_FIELDS, 0))
        row["category_id"] = category_id
        if r.tag == "sold":
            row["orders"], row["quantity"], row["sales_fen"] = int(r.v0), int(r.v1), int(r.v2)
        else:
            row["refunds"], row["refund_qty"], row["refunds_fen"] = int(r.v0), int(r.v1), int(r.v2)


def _categories(out: Summary, rows: Sequence[Any], category_id: int) -> None:
    for r in rows:
        store_id, day = _key(r)
        if r.tag == "member":
            key = (store_id, day, category_id, int(r.member_id))
            out.category_members[key] = {"orders": int(r.v0)}
            continue
        key3 = (store_id, day, category_id)
        row = out.categories.setdefault(key3, dict.fromkeys(CATEGORY_FIELDS, 0))
        if r.tag == "sold":
            row["orders"], row["items"], row["sales_fen"] = int(r.v0), int(r.v1), int(r.v2)
        else:
            row["refunds"], row["refunds_fen"] = int(r.v0), int(r.v2)
